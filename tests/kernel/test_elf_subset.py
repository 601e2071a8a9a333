"""What a load takes from the user before it starts: which programs (libbpf's autoload)."""

from __future__ import annotations

import os

import pytest

from bpfnb.elf import load, read
from bpfnb.errors import VerifierError
from bpfnb.sys.testrun import prog_test_run

PACKET = bytes(14) + bytes([0x45]) + bytes(49)


def run(obj, name: str) -> int:
    return prog_test_run(obj.programs[name].fd, PACKET).retval


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_one_rejected_program_fails_a_load_of_all(clang_build):
    before = open_fds()
    with pytest.raises(VerifierError, match="'bad'"):
        load(clang_build("elf_autoload"))
    assert open_fds() == before


def test_autoload_off_leaves_a_program_out(clang_build):
    spec = read(clang_build("elf_autoload"))
    # "?socket": libbpf's autoload is off from the start.
    assert {n: p.autoload for n, p in spec.programs.items()} == {
        "good": True,
        "bad": True,
        "optional": False,
    }
    assert spec.programs["optional"].section == "socket"
    spec.programs["bad"].autoload = False
    with load(spec) as obj:
        assert list(obj.programs) == ["good"] and run(obj, "good") == 7
        assert "values" in obj.maps  # every map is created, as libbpf creates them


def test_programs_names_exactly_what_loads(clang_build):
    path = clang_build("elf_autoload")
    with load(path, programs=["optional", "good"]) as obj:
        assert sorted(obj.programs) == ["good", "optional"]
        assert (run(obj, "good"), run(obj, "optional")) == (7, 8)
    with pytest.raises(KeyError, match="no program 'nope'.*good, bad, optional"):
        load(path, programs=["nope"])
