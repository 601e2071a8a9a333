"""What a load takes from the user before it starts: which programs (libbpf's autoload), and
map sizes."""

from __future__ import annotations

import os
import re

import pytest

from bpfnb.elf import load, read
from bpfnb.errors import MapError, VerifierError
from bpfnb.sys import bpf
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


def test_a_map_of_size_zero_says_what_to_set(clang_build):
    before = open_fds()
    message = (
        "map 'events': max_entries 0 is invalid for a hash map; "
        "set spec.maps['events'].max_entries before load"
    )
    with pytest.raises(MapError, match=re.escape(message)) as caught:
        load(clang_build("elf_resize"))
    assert not isinstance(caught.value, OSError) and caught.value.errno
    assert open_fds() == before


@pytest.mark.parametrize("size", [100, 40])
def test_a_resized_map_holds_as_many_entries_as_set(clang_build, size):
    spec = read(clang_build("elf_resize"))
    spec.maps["events"].max_entries = size
    with load(spec) as obj:
        assert bpf.map_info(obj.maps["events"].fd).max_entries == size
        # The program inserts keys 0..99 and stops at the first the map refuses.
        assert run(obj, "fill") == min(size, 100)
        assert len(obj.maps["events"]) == min(size, 100)
