"""Every common map type, with struct keys and values, filled by a workload this test controls.

The workload is ``lseek(-1, offset, whence)`` from this process: it fails with EBADF, but the
``sys_enter_lseek`` tracepoint sees our chosen offset and whence first.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from bpfnb.bcc import from_bcc_table
from bpfnb.maps import (
    ArrayMap,
    LpmTrieMap,
    LruHashMap,
    Map,
    PerCpuArrayMap,
    PerCpuHashMap,
    possible_cpus,
)
from tests.conftest import need
from tests.kernel.conftest import _bcc_works

PROGRAM = r"""
struct key_t { u32 pid; u32 slot; char comm[16]; };
struct val_t { u64 count; u64 total; s32 whence; u32 pad; };
struct lpm_key_t { u32 prefixlen; u8 addr[4]; };

BPF_HASH(hash, struct key_t, struct val_t, 1024);
BPF_TABLE("lru_hash", struct key_t, struct val_t, lru, 1024);
BPF_PERCPU_HASH(pcpu_hash, struct key_t, struct val_t, 1024);
BPF_ARRAY(array, struct val_t, 64);
BPF_PERCPU_ARRAY(pcpu_array, struct val_t, 64);
BPF_LPM_TRIE(lpm, struct lpm_key_t, struct val_t, 128);

static void add(struct val_t *v, u64 offset, s32 whence) {
    __sync_fetch_and_add(&v->count, 1);
    __sync_fetch_and_add(&v->total, offset);
    v->whence = whence;
}

TRACEPOINT_PROBE(syscalls, sys_enter_lseek) {
    if (bpf_get_current_pid_tgid() >> 32 != PID || (u32)args->fd != 0xffffffff)
        return 0;
    u64 offset = args->offset;
    s32 whence = args->whence;
    struct key_t key = {.pid = PID, .slot = offset % 64};
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    struct val_t zero = {};
    struct val_t *v;
    v = hash.lookup_or_try_init(&key, &zero);
    if (v) add(v, offset, whence);
    v = lru.lookup_or_try_init(&key, &zero);
    if (v) add(v, offset, whence);
    v = pcpu_hash.lookup_or_try_init(&key, &zero);
    if (v) { v->count++; v->total += offset; v->whence = whence; }
    int index = offset % 64;
    v = array.lookup(&index);
    if (v) add(v, offset, whence);
    v = pcpu_array.lookup(&index);
    if (v) { v->count++; v->total += offset; v->whence = whence; }
    struct lpm_key_t lkey = {.prefixlen = 32};
    lkey.addr[0] = offset >> 24; lkey.addr[1] = offset >> 16;
    lkey.addr[2] = offset >> 8; lkey.addr[3] = offset;
    v = lpm.lookup(&lkey);
    if (v) add(v, offset, whence);
    return 0;
}
"""

SLOTS = range(1, 6)  # slot k is hit k times, at offsets k, k + 64, k + 128, ...


def _workload() -> dict[int, tuple[int, int]]:
    """Run the lseek calls; return slot -> (count, total of offsets)."""
    expected: dict[int, tuple[int, int]] = {}
    for k in SLOTS:
        offsets = [k + 64 * j for j in range(k)]
        for offset in offsets:
            with contextlib.suppress(OSError):
                os.lseek(-1, offset, k)
        expected[k] = (len(offsets), sum(offsets))
    return expected


@contextlib.contextmanager
def _on_cpu(cpu: int) -> Iterator[None]:
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@pytest.fixture(scope="module")
def traced() -> Iterator[tuple[dict[str, Map], dict[int, tuple[int, int]], int]]:
    from bpfnb.bcc import import_bcc

    need(os.geteuid() == 0, "kernel tests need root")
    reason = _bcc_works()
    need(not reason, reason)

    bcc = import_bcc()
    program = bcc.BPF(text=PROGRAM, cflags=[f"-DPID={os.getpid()}"])
    try:
        names = ("hash", "lru", "pcpu_hash", "array", "pcpu_array", "lpm")
        maps = {name: from_bcc_table(program[name.encode()]) for name in names}
        # LPM prefixes 10.0.0.0/8 and 10.1.0.0/16 are inserted before the workload.
        maps["lpm"][(8, [10, 0, 0, 0])] = (0, 0, 0, 0)
        maps["lpm"][{"prefixlen": 16, "addr": [10, 1, 0, 0]}] = (0, 0, 0, 0)
        cpu = possible_cpus()[0]
        with _on_cpu(cpu):
            expected = _workload()
            for offset in (0x0A010203, 0x0A010204, 0x0A020001):
                with contextlib.suppress(OSError):
                    os.lseek(-1, offset, 7)
        yield maps, expected, cpu
    finally:
        program.cleanup()


def _comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


@pytest.mark.parametrize("name", ["hash", "lru", "pcpu_hash"])
def test_struct_keyed_hashes_field_by_field(traced, name: str) -> None:
    maps, expected, cpu = traced
    m = maps[name]
    assert isinstance(m, {"hash": Map, "lru": LruHashMap, "pcpu_hash": PerCpuHashMap}[name])
    assert m.key_type_name == "struct key_t" and m.value_type_name == "struct val_t"
    frame = m.to_frame().sort_values("slot")
    mine = frame[frame["pid"] == os.getpid()]
    # The LPM offsets add their own slots (3, 4, 1); keep only the slots the test chose.
    assert set(expected) <= set(mine["slot"])
    for k, (count, total) in expected.items():
        rows = mine[mine["slot"] == k]
        extra = [o for o in (0x0A010203, 0x0A010204, 0x0A020001) if o % 64 == k]
        assert len(rows) == 1, rows
        row = rows.iloc[0]
        assert row["comm"] == _comm()
        assert row["count"] == count + len(extra)
        assert row["total"] == total + sum(extra)
        assert row["whence"] == (7 if extra else k)
        if m.per_cpu:
            assert row[f"count.cpu{cpu}"] == count + len(extra)
            others = [c for c in possible_cpus() if c != cpu]
            assert all(row[f"count.cpu{c}"] == 0 for c in others)
    # The mapping protocol reads the same entry, one syscall.
    value = m[(os.getpid(), 2, _comm())]
    if m.per_cpu:
        assert [v.count for v in value] == [2 if c == cpu else 0 for c in possible_cpus()]
    else:
        assert (value.count, value.total, value.whence) == (2, 2 + 66, 2)
    assert (os.getpid(), 63, "nobody") not in m


@pytest.mark.parametrize("name", ["array", "pcpu_array"])
def test_arrays_field_by_field(traced, name: str) -> None:
    maps, expected, cpu = traced
    m = maps[name]
    assert isinstance(m, PerCpuArrayMap if name == "pcpu_array" else ArrayMap)
    frame = m.to_frame(per_cpu=False)
    assert list(frame.columns) == ["key", "count", "total", "whence", "pad"]
    assert len(frame) == len(m) == 64
    lpm_slots = {o % 64: o for o in (0x0A010203, 0x0A010204, 0x0A020001)}
    for k in range(64):
        count, total = expected.get(k, (0, 0))
        if k in lpm_slots:
            count, total = count + 1, total + lpm_slots[k]
        row = frame.iloc[k]
        assert (row["key"], row["count"], row["total"]) == (k, count, total)
    if m.per_cpu:
        full = m.to_frame()
        assert (full["count"] == full[f"count.cpu{cpu}"]).all()


def test_lpm_trie_longest_prefix_field_by_field(traced) -> None:
    maps, _, _ = traced
    m = maps["lpm"]
    assert isinstance(m, LpmTrieMap)
    frame = m.to_frame().sort_values("prefixlen")
    assert frame["prefixlen"].tolist() == [8, 16]
    assert [list(a) for a in frame["addr"]] == [[10, 0, 0, 0], [10, 1, 0, 0]]
    # 10.1.2.3 and 10.1.2.4 match the /16; 10.2.0.1 only the /8.
    assert frame["count"].tolist() == [1, 2]
    assert frame["total"].tolist() == [0x0A020001, 0x0A010203 + 0x0A010204]
    assert frame["whence"].tolist() == [7, 7]
