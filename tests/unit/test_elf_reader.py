"""bpfnb.elf.read: every fixture object, read as pure data (no kernel, no privileges)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from bpfnb.elf import read
from bpfnb.elf.spec import KERNEL_VERSION_CURRENT
from bpfnb.errors import ElfError
from bpfnb.sys.constants import AttachType, MapType, ProgType
from tests.conftest import FIXTURES

NO_DEBUG = "-g0"  # clang_build passes -g; a later -g0 turns debug info (and BTF) off


@pytest.fixture(scope="module", params=["-g", NO_DEBUG])
def gobpf(request, clang_build):
    return read(clang_build("elf_gobpf_dummy", request.param))


def test_gobpf_legacy_maps_keep_every_field(gobpf):
    maps = gobpf.maps
    expected = {
        "dummy_hash": (MapType.HASH, 4, 8, 128),
        "dummy_array": (MapType.ARRAY, 4, 8, 128),
        "dummy_prog_array": (MapType.PROG_ARRAY, 4, 4, 128),
        "dummy_perf": (MapType.PERF_EVENT_ARRAY, 4, 4, 0),
        "dummy_percpu_hash": (MapType.PERCPU_HASH, 4, 8, 128),
        "dummy_percpu_array": (MapType.PERCPU_ARRAY, 4, 8, 128),
        "dummy_stack_trace": (MapType.STACK_TRACE, 4, 127 * 8, 128),
        "dummy_pinned": (MapType.HASH, 4, 8, 16),
    }
    assert set(maps) == set(expected)
    for name, (kind, key, value, entries) in expected.items():
        m = maps[name]
        assert (m.type, m.key_size, m.value_size, m.max_entries) == (kind, key, value, entries)
        assert m.layout == "gobpf" and m.section == f"maps/{name}"
    assert maps["dummy_pinned"].pinning == 3 and maps["dummy_pinned"].namespace == "bpfnb_test"
    assert maps["dummy_hash"].pinning == 0 and maps["dummy_hash"].namespace == ""


def test_gobpf_sections_give_program_types(gobpf):
    progs = gobpf.programs
    kinds = {name: (p.type, p.attach_kind, p.attach_target) for name, p in progs.items()}
    assert kinds == {
        "kprobe__dummy": (ProgType.KPROBE, "kprobe", "dummy"),
        "kretprobe__dummy": (ProgType.KPROBE, "kretprobe", "dummy"),
        "uprobe__dummy": (ProgType.KPROBE, "uprobe", "dummy"),
        "uretprobe__dummy": (ProgType.KPROBE, "uretprobe", "dummy"),
        "tracepoint__raw_sys_enter": (ProgType.TRACEPOINT, "tracepoint", "raw_syscalls/sys_enter"),
        "socket__dummy": (ProgType.SOCKET_FILTER, "socket", "dummy"),
        "cgroup_skb__dummy": (ProgType.CGROUP_SKB, "cgroup", ""),
        "cgroup_sock__dummy": (ProgType.CGROUP_SOCK, "cgroup", ""),
        "xdp__dummy": (ProgType.XDP, "xdp", "dummy"),
        "perf_event__dummy": (ProgType.PERF_EVENT, "perf_event", ""),
    }
    assert gobpf.license == "GPL"
    assert gobpf.kernel_version == KERNEL_VERSION_CURRENT
    assert all(p.kernel_version == KERNEL_VERSION_CURRENT for p in progs.values())


def test_map_references_name_their_maps(gobpf):
    prog = gobpf.programs["kprobe__dummy"]
    referenced = {ref.map for ref in prog.references}
    assert referenced == {
        "dummy_stack_trace", "dummy_hash", "dummy_percpu_hash", "dummy_array", "dummy_percpu_array"
    }  # fmt: skip
    for ref in prog.references:
        opcode, regs = prog.instructions[ref.insn * 8], prog.instructions[ref.insn * 8 + 1]
        assert opcode == 0x18 and regs >> 4 == 1  # ld_imm64 with BPF_PSEUDO_MAP_FD


@pytest.mark.parametrize("flags", [(), ("-DSEVEN_FIELDS",)])
def test_samples_map_defs_share_one_section(clang_build, flags):
    spec = read(clang_build("elf_samples_maps", *flags))
    got = {n: (m.type, m.key_size, m.value_size, m.max_entries) for n, m in spec.maps.items()}
    expected = {
        "calls": (MapType.HASH, 4, 8, 64),
        "totals": (MapType.ARRAY, 4, 8, 2),
        "lru": (MapType.LRU_HASH, 8, 8, 32),
    }
    if flags:  # the 7-field layout adds a map-in-map whose inner_map_idx names "totals"
        expected["outer"] = (MapType.ARRAY_OF_MAPS, 4, 4, 2)
        assert spec.maps["outer"].inner is spec.maps["totals"]
    assert got == expected
    assert all(m.section == "maps" and m.layout == "samples" for m in spec.maps.values())


def test_btf_maps_have_types_flags_pinning_and_inner_maps(clang_build):
    spec = read(clang_build("elf_btf_maps"))
    counts = spec.maps["counts"]
    assert (counts.type, counts.key_size, counts.value_size, counts.max_entries) == (
        MapType.HASH, 20, 16, 1024
    )  # fmt: skip
    assert counts.key_type_name == "struct key_t" and counts.value_type_name == "struct value_t"
    assert counts.key_layout.dtype.names == ("pid", "comm")
    assert counts.key_layout.dtype["comm"] == np.dtype("S16")
    assert counts.value_layout.dtype.names == ("count", "last_ns")
    pinned = spec.maps["pinned"]
    assert (pinned.flags, pinned.pinning, pinned.layout) == (1, 1, "btf")
    assert spec.maps["per_cpu"].type == MapType.PERCPU_ARRAY
    assert spec.maps["events"].type == MapType.RINGBUF
    assert spec.maps["events"].max_entries == 4096
    outer = spec.maps["outer"]
    assert outer.type == MapType.ARRAY_OF_MAPS and outer.max_entries == 2
    assert outer.inner is not None and outer.inner.type == MapType.ARRAY
    assert (outer.inner.key_size, outer.inner.value_size, outer.inner.max_entries) == (4, 8, 8)
    assert outer.initial_slots == {0: "inner"}


def test_btf_maps_without_btf_say_how_to_fix(clang_build):
    with pytest.raises(ElfError, match="compile with clang -g") as err:
        read(clang_build("elf_btf_maps", NO_DEBUG))
    assert err.value.section == ".maps"


def test_global_data_becomes_maps_and_constants(clang_build):
    spec = read(clang_build("elf_globals"))
    data = spec.data_maps
    assert set(data) == {".rodata", ".data", ".bss"}
    assert data[".rodata"].readonly and not data[".data"].readonly
    assert data[".bss"].data is None and data[".bss"].value_size == 8
    assert dict(spec.constants) == {"verdict": 0, "target_pid": 0, "greeting": b"hello\0"}
    spec.constants["verdict"] = 42
    assert spec.constants["verdict"] == 42
    rodata = data[".rodata"].data
    offset = spec.variables["verdict"].offset
    assert struct.unpack_from("<I", rodata, offset)[0] == 42
    with pytest.raises(KeyError, match="target_pid"):
        spec.constants["no_such_constant"] = 1
    with pytest.raises(ValueError, match="does not fit"):
        spec.constants["verdict"] = 1 << 40
    layout = data[".data"].value_layout
    assert layout.dtype.names == ("seen_pid", "table")


def test_data_references_carry_offsets(clang_build):
    spec = read(clang_build("elf_globals"))
    prog = spec.programs["on_getppid"]
    target = [r for r in prog.references if r.map == ".rodata"]
    assert [(r.kind, r.offset) for r in target] == [("data", spec.variables["target_pid"].offset)]
    for ref in prog.references:
        if ref.kind == "data":
            assert prog.instructions[ref.insn * 8 + 1] >> 4 == 2  # BPF_PSEUDO_MAP_VALUE


def test_subprograms_are_linked_into_every_caller(clang_build):
    spec = read(clang_build("elf_globals"))
    assert set(spec.programs) == {"filter", "on_getppid", "raw_enter"}
    for prog in spec.programs.values():
        names = list(prog.functions.values())
        assert names[0] == prog.name and set(names[1:]) == {"bump", "scaled"}
        starts = {name: insn for insn, name in prog.functions.items()}
        # Every bpf-to-bpf call lands on the start of a linked function.
        for i in range(len(prog)):
            opcode, regs = prog.instructions[i * 8], prog.instructions[i * 8 + 1]
            if opcode == 0x85 and regs >> 4 == 1:
                imm = struct.unpack_from("<i", prog.instructions, i * 8 + 4)[0]
                assert i + 1 + imm in starts.values()
        # Function info follows the linked layout, one record per function.
        assert [f.insn for f in prog.func_info] == sorted(starts.values())


def test_line_info_points_at_c_source(clang_build):
    spec = read(clang_build("elf_globals"))
    prog = spec.programs["filter"]
    first, last = prog.source_line(0), prog.source_line(len(prog) - 1)
    assert first is not None and first.file.endswith("elf_globals.c")
    assert first.source == "int filter(void *skb)"
    # The last linked instruction is scaled()'s: line info moved with the subprogram.
    assert last is not None and "table[value & 3]" in last.source


def test_unknown_program_section_is_named(clang_build):
    with pytest.raises(ElfError, match="unknown program section") as err:
        read(clang_build("elf_unknown_section"))
    assert err.value.section == "not_a_program_type/x"


def test_gobpf_map_of_wrong_size_names_the_layout(clang_build):
    with pytest.raises(ElfError, match="280 bytes") as err:
        read(clang_build("elf_gobpf_bad_size"))
    assert err.value.section == "maps/too_short"
    assert "namespace[256]" in str(err.value)


def test_tracing_sections(clang_build):
    prog = read(clang_build("elf_fentry")).programs["on_openat2"]
    assert prog.type == ProgType.TRACING
    assert prog.expected_attach_type == AttachType.TRACE_FENTRY
    assert prog.attach_target == "do_sys_openat2"


def test_sections_are_listed_with_their_role(clang_build):
    spec = read(clang_build("elf_globals"))
    roles = {s.name: s.role for s in spec.sections}
    assert roles["socket"] == "program" and roles[".text"] == "subprograms"
    assert roles[".maps"] == "maps (BTF)" and roles[".rodata"] == "global data"
    assert roles["license"] == "license" and roles[".BTF"] == "BTF"
    assert roles[".debug_info"] == "debug info (ignored)"


def test_read_takes_bytes(clang_build):
    data = clang_build("elf_samples_maps").read_bytes()
    assert set(read(data).maps) == {"calls", "totals", "lru"}


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "not an ELF file"),
        (b"\x7fELF" + bytes(60), "64-bit"),
        (b"hello world" * 10, "not an ELF file"),
    ],
)
def test_not_an_object(data, message):
    with pytest.raises(ElfError, match=message):
        read(data)


def test_wrong_machine(clang_build):
    data = bytearray(clang_build("elf_samples_maps").read_bytes())
    data[18:20] = (62).to_bytes(2, "little")  # EM_X86_64
    with pytest.raises(ElfError, match="not a BPF object"):
        read(bytes(data))


def with_machine_zero(path) -> bytes:
    data = bytearray(path.read_bytes())
    data[18:20] = bytes(2)  # EM_NONE, as LLVM before 3.9 wrote BPF objects
    return bytes(data)


def test_old_objects_without_em_bpf_read_with_a_warning(clang_build):
    path = clang_build("elf_samples_maps")
    with pytest.warns(UserWarning, match=r"e_machine is 0.*tracepoint/syscalls/sys_enter_getppid"):
        old = read(with_machine_zero(path))
    new = read(path)
    assert {n: p.instructions for n, p in old.programs.items()} == {
        n: p.instructions for n, p in new.programs.items()
    }
    assert list(old.maps) == list(new.maps)


def test_machine_zero_without_bpf_program_sections_is_refused(clang_build):
    with pytest.raises(ElfError, match="e_machine 0, and no code section has a BPF program"):
        read(with_machine_zero(clang_build("elf_unknown_section")))


def test_truncated_object(clang_build):
    data = clang_build("elf_globals").read_bytes()
    for size in (64, len(data) // 2, len(data) - 1):
        with pytest.raises(ElfError):
            read(data[:size])


MALFORMED_ON_PURPOSE = {"elf_unknown_section", "elf_gobpf_bad_size"}
CORE_NEEDS_DEBUG_INFO = {"elf_core"}  # clang refuses CO-RE builtins without -g
ALL_FIXTURES = sorted(
    p.stem for p in FIXTURES.glob("elf_*.c") if p.stem not in MALFORMED_ON_PURPOSE
)


@pytest.mark.parametrize(
    "name, debug",
    [(name, "-g") for name in ALL_FIXTURES]
    + [(name, NO_DEBUG) for name in ALL_FIXTURES if name not in CORE_NEEDS_DEBUG_INFO],
)
def test_every_fixture_reads(clang_build, name, debug):
    """Every ELF fixture reads without the kernel; without -g, what needs BTF says why not."""
    path = clang_build(name, debug)
    source = (FIXTURES / f"{name}.c").read_bytes()
    # Maps need BTF: .maps (usdt.bpf.h declares some of its own) and struct_ops maps.
    maps = (b'SEC(".maps")', b"#include <bpf/usdt.bpf.h>", b'SEC(".struct_ops")')
    if debug == NO_DEBUG and any(m in source for m in maps):
        with pytest.raises(ElfError, match="clang -g"):
            read(path)
        return
    spec = read(path)
    assert spec.programs and spec.license
    if debug == NO_DEBUG:
        # Externs read without BTF too; only the load needs it (and says so).
        assert not spec.externs and not spec.maps.get(".kconfig")
        uses = [ref for prog in spec.programs.values() for ref in prog.externs]
        assert bool(uses) == (b"__kconfig" in source or b"__ksym" in source)
    for prog in spec.programs.values():
        assert len(prog) > 0 and prog.disassemble()
        assert bool(prog.line_info) == (debug != NO_DEBUG)
    for m in spec.maps.values():
        assert m.key_layout.size == m.key_size and m.value_layout.size == m.value_size


def test_callbacks_are_linked_as_pseudo_func_loads(clang_build):
    prog = read(clang_build("elf_callback")).programs["sum_to_ten"]
    starts = {name: insn for insn, name in prog.functions.items()}
    assert set(starts) == {"sum_to_ten", "add_index"}
    loads = [
        i for i in range(len(prog))
        if prog.instructions[i * 8] == 0x18 and prog.instructions[i * 8 + 1] >> 4 == 4
    ]  # fmt: skip
    assert len(loads) == 1  # BPF_PSEUDO_FUNC: the callback's address
    imm = struct.unpack_from("<i", prog.instructions, loads[0] * 8 + 4)[0]
    assert loads[0] + 1 + imm == starts["add_index"]
    assert "= add_index ll" in prog.disassemble()
