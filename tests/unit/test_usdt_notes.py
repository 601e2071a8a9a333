"""``.note.stapsdt`` parsing, on a workload built here, checked against binutils' ``readelf -n``
and the bytes at each site."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bpfnb.usdt import read_notes
from bpfnb.usdt.notes import relocate, vaddr_to_offset
from tests.conftest import need
from tests.usdt_workload import NOP, build_workload, byte_at, readelf_notes


@pytest.fixture(scope="module", params=[("-O0",), ("-O2",), ("-O2", "-no-pie")])
def workload(request, tmp_path_factory) -> Path:
    return build_workload(tmp_path_factory.mktemp("usdt"), *request.param)


def _symbol_address(path: Path, name: str) -> int:
    out = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True).stdout
    return next(int(line.split()[0], 16) for line in out.splitlines() if line.endswith(name))


def test_workload_notes_matchreadelf_notes(workload: Path) -> None:
    notes = read_notes(workload)
    assert sorted(n.probe for n in notes) == [
        "bpfnbtest:args",
        "bpfnbtest:gated",
        "bpfnbtest:tick",
        "bpfnbtest:tick",
    ]
    assert [
        (n.provider, n.name, n.address, n.semaphore, n.arguments) for n in notes
    ] == readelf_notes(workload)
    for note in notes:
        assert byte_at(workload, note.offset) == bytes([NOP]), note
        assert len(note.arguments.split()) == (5 if note.name == "args" else 1)


def test_semaphore_offsets_point_at_the_semaphore_variable(workload: Path) -> None:
    need(shutil.which("nm") is not None, "binutils' nm is not installed")
    [gated] = [n for n in read_notes(workload) if n.name == "gated"]
    assert gated.semaphore == _symbol_address(workload, "bpfnbtest_gated_semaphore")
    assert gated.semaphore_offset and byte_at(workload, gated.semaphore_offset, 2) == b"\0\0"
    assert all(
        n.semaphore == n.semaphore_offset == 0 for n in read_notes(workload) if n.name != "gated"
    )


def test_non_pie_offsets_differ_from_addresses(tmp_path: Path) -> None:
    path = build_workload(tmp_path, "-O2", "-no-pie")
    for note in read_notes(path):
        assert note.address >= 0x400000 > note.offset


def test_relocate_follows_a_moved_stapsdt_base() -> None:
    # Prelink moved .stapsdt.base from 0x2000 to 0x5000: every site and semaphore moves 0x3000.
    assert relocate(0x1234, 0x2000, 0x5000) == 0x4234
    assert relocate(0x1234, 0x2000, 0x2000) == 0x1234
    assert relocate(0x1234, 0x2000, None) == 0x1234  # no .stapsdt.base section
    assert relocate(0, 0x2000, 0x5000) == 0  # no semaphore stays none


def test_vaddr_to_offset() -> None:
    segments = [(0x400000, 0x1000, 0), (0x401000, 0x800, 0x1000), (0x403000, 0x100, 0x2000)]
    assert vaddr_to_offset(segments, 0x401234) == 0x1234
    assert vaddr_to_offset(segments, 0x403010) == 0x2010
    assert vaddr_to_offset(segments, 0x401800) is None  # past the segment's file bytes
