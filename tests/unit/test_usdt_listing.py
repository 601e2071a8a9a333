"""Listing USDT probes of a binary or a process, and finding a probe's sites."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfnb.errors import AttachError
from bpfnb.usdt import find_sites, probes
from tests.conftest import need
from tests.usdt_workload import NOP, build_workload, byte_at, readelf_notes, start_waiting

PYTHON = Path("/usr/bin/python3.11")


@pytest.fixture(scope="module")
def workload(tmp_path_factory) -> Path:
    return build_workload(tmp_path_factory.mktemp("usdt"), "-O2")


def test_python_probes_listed() -> None:
    need(PYTHON.exists(), f"{PYTHON} is not installed")
    frame = probes(str(PYTHON))
    assert {"function__entry", "function__return", "line", "gc__start", "gc__done"} <= set(
        frame["name"]
    )
    assert set(frame["provider"]) == {"python"} and set(frame["path"]) == {str(PYTHON)}
    entry = frame[frame["name"] == "function__entry"].iloc[0]
    assert len(entry["arguments"].split()) == 3
    assert entry["semaphore"] != 0 and entry["semaphore_offset"] != 0
    expected = [(p, n, a, s, args) for p, n, a, s, args in readelf_notes(PYTHON)]
    got = frame[["provider", "name", "address", "semaphore", "arguments"]]
    assert sorted(map(tuple, got.itertuples(index=False))) == sorted(expected)
    for offset in frame["offset"]:
        assert byte_at(PYTHON, int(offset)) == bytes([NOP])


def test_probes_of_a_process_name_its_mapped_files(workload: Path) -> None:
    proc = start_waiting(workload, 1)
    try:
        frame = probes(proc.pid)
        assert set(frame.loc[frame["provider"] == "bpfnbtest", "path"]) == {str(workload)}
        assert sorted(frame.loc[frame["provider"] == "bpfnbtest", "name"]) == [
            "args",
            "gated",
            "tick",
            "tick",
        ]
    finally:
        proc.communicate("go\n", timeout=10)


def test_find_sites_names_the_probes_there_are(workload: Path) -> None:
    assert len(find_sites(str(workload), "bpfnbtest", "tick")) == 2
    with pytest.raises(AttachError, match=r"no USDT probe bpfnbtest:nope .*bpfnbtest:gated"):
        find_sites(str(workload), "bpfnbtest", "nope")
    with pytest.raises(AttachError, match="its probes: none"):
        find_sites("/bin/true", "x", "y")
