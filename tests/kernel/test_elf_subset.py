"""What a load takes from the user before it starts: which programs (libbpf's autoload), map
sizes, and program arrays filled from their definitions."""

from __future__ import annotations

import os
import re

import pytest

from bpfnb.elf import load, read
from bpfnb.errors import MapError, VerifierError
from bpfnb.sys import bpf
from bpfnb.sys.testrun import prog_test_run
from tests.kernel.loadall import bpftool_loadall, tags

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


@pytest.mark.parametrize("slot, result", [(0, 10), (2, 30), (1, 99)])
def test_a_program_array_holds_the_programs_its_definition_names(clang_build, slot, result):
    with load(clang_build("elf_prog_array"), {"slot": slot}) as obj:
        assert run(obj, "entry") == result  # 99: the entry program found slot 1 empty


def test_a_program_array_loads_as_libbpf_loads_it(clang_build):
    path = clang_build("elf_prog_array")
    with load(path) as obj:
        assert tags(obj) == bpftool_loadall(path)


def test_a_program_array_slot_whose_program_is_left_out(clang_build):
    spec = read(clang_build("elf_prog_array"))
    assert spec.maps["jumps"].initial_slots == {0: "first", 2: "third"}
    spec.programs["third"].autoload = False
    with pytest.raises(MapError, match="slot 2 holds program 'third', which is not loaded"):
        load(spec)
    del spec.maps["jumps"].initial_slots[2]  # what the message suggests
    with load(spec) as obj:
        assert sorted(obj.programs) == ["entry", "first"] and run(obj, "entry") == 10
