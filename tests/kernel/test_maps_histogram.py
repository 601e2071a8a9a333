"""Histogram maps filled with known values: the right buckets, and bcc's ASCII output."""

from __future__ import annotations

import contextlib
import os
from collections import Counter

import pytest

from bpfnb.bcc import from_bcc_table

PROGRAM = r"""
struct section_t { u32 whence; u64 slot; };
BPF_HISTOGRAM(dist);
BPF_HISTOGRAM(linear, int, 32);
BPF_HISTOGRAM(sections, struct section_t);

TRACEPOINT_PROBE(syscalls, sys_enter_lseek) {
    if (bpf_get_current_pid_tgid() >> 32 != PID || (u32)args->fd != 0xffffffff)
        return 0;
    u64 value = args->offset;
    dist.increment(bpf_log2l(value));
    linear.increment(value % 32);
    struct section_t key;
    __builtin_memset(&key, 0, sizeof(key));  // the padding too: it is part of the hash key
    key.whence = args->whence;
    key.slot = bpf_log2l(value);
    sections.increment(key);
    return 0;
}
"""

VALUES = [0, 1, 1, 2, 3, 5, 6, 7, 100, 1000, 1000, 1 << 20, (1 << 20) + 5, 1 << 40]


def _seek(value: int, whence: int) -> None:
    with contextlib.suppress(OSError):
        os.lseek(-1, value, whence)


@pytest.fixture
def program(bcc_ok: None):
    from bpfnb.bcc import import_bcc

    bcc = import_bcc()
    loaded = bcc.BPF(text=PROGRAM, cflags=[f"-DPID={os.getpid()}"])
    try:
        for i, value in enumerate(VALUES):
            _seek(value, i % 2)
        yield loaded
    finally:
        loaded.cleanup()


def test_log2_values_land_in_their_buckets(program) -> None:
    hist = from_bcc_table(program[b"dist"]).to_histogram("log2")
    assert list(hist.columns) == ["slot", "low", "high", "count"]
    for value in set(VALUES):
        row = hist[(hist["low"] <= value) & (value <= hist["high"])]
        assert len(row) == 1, value
        expected = sum(1 for v in VALUES if row.iloc[0]["low"] <= v <= row.iloc[0]["high"])
        assert row.iloc[0]["count"] == expected
    # Every count is somewhere, and buckets are the powers of two bcc prints.
    assert hist["count"].sum() == len(VALUES)
    assert hist.iloc[0][["low", "high", "count"]].tolist() == [0, 1, 3]  # 0, 1, 1
    assert hist.iloc[1][["low", "high", "count"]].tolist() == [2, 3, 2]
    assert hist.iloc[-1][["low", "high", "count"]].tolist() == [1 << 40, (1 << 41) - 1, 1]


def test_linear_histogram(program) -> None:
    hist = from_bcc_table(program[b"linear"]).to_histogram("linear")
    expected = Counter(v % 32 for v in VALUES)
    assert (hist["low"] == hist["high"]).all()
    assert {int(r.low): int(r.count) for r in hist.itertuples() if r.count} == expected


def test_sections_split_by_the_bucket_field(program) -> None:
    hist = from_bcc_table(program[b"sections"]).to_histogram()
    assert list(hist.columns) == ["whence", "slot", "low", "high", "count"]
    for whence in (0, 1):
        mine = [v for i, v in enumerate(VALUES) if i % 2 == whence]
        rows = hist[hist["whence"] == whence]
        assert rows["count"].sum() == len(mine)
        for value in mine:
            row = rows[(rows["low"] <= value) & (value <= rows["high"])].iloc[0]
            assert row["count"] == sum(1 for v in mine if row["low"] <= v <= row["high"])


@pytest.mark.parametrize(
    ("name", "kind"), [("dist", "log2"), ("linear", "linear"), ("sections", "log2")]
)
def test_text_matches_bcc(program, capsys, name: str, kind: str) -> None:
    table = program[name.encode()]
    getattr(table, f"print_{kind}_hist")("usecs", section_header="whence")
    theirs = capsys.readouterr().out
    getattr(from_bcc_table(table), f"print_{kind}_hist")("usecs", section_header="whence")
    ours = capsys.readouterr().out
    # Sections come sorted by bucket, bcc's in hash order: compare them as a set.
    assert sorted(p.strip() for p in ours.split("\n\n")) == sorted(
        p.strip() for p in theirs.split("\n\n")
    )
    assert "usecs" in ours and ours.count("whence = ") == (2 if name == "sections" else 0)
