"""CO-RE relocations, resolved against a target BTF."""

from __future__ import annotations

import os
import struct

import pytest

from bpfnb.elf import btf, read
from bpfnb.elf.btf import CoreRelocation
from bpfnb.elf.core import (
    POISON_HELPER,
    CoreError,
    apply_core_relocations,
    resolve,
    types_are_compat,
)
from tests.unit.test_elf_btf import BtfBuilder

VMLINUX = "/sys/kernel/btf/vmlinux"
FIELD_BYTE_OFFSET, FIELD_BYTE_SIZE, FIELD_EXISTS = 0, 1, 2
TYPE_EXISTS, TYPE_SIZE, ENUMVAL_VALUE = 8, 9, 11


def two_layouts() -> tuple[btf.Btf, btf.Btf]:
    """The same struct twice: locally {int a; int b;}, in the "kernel" {long x; int b; int a;}."""
    local = BtfBuilder()
    local.int_("int", 4, signed=True)  # 1
    members = struct.pack("<III", local.name("a"), 1, 0) + struct.pack(
        "<III", local.name("b"), 1, 32
    )
    local.add("thing", 4, 2, 8, members)  # 2
    local.add("color", 6, 1, 4, struct.pack("<Ii", local.name("BLUE"), 3))  # 3
    target = BtfBuilder()
    target.int_("int", 4, signed=True)  # 1
    target.int_("long", 8, signed=True)  # 2
    members = struct.pack("<III", target.name("x"), 2, 0)
    members += struct.pack("<III", target.name("b"), 1, 64)
    members += struct.pack("<III", target.name("a"), 1, 96)
    target.add("thing___v2", 4, 3, 16, members)  # 3: a flavor: a candidate too, as in libbpf
    target.add("thing", 4, 3, 16, members)  # 4: the same layout, so the two agree
    target.add("color", 6, 1, 4, struct.pack("<Ii", target.name("BLUE"), 9))  # 5
    return btf.parse(local.bytes()), btf.parse(target.bytes())


def test_field_offsets_follow_member_names():
    local, target = two_layouts()
    assert resolve(CoreRelocation(0, 2, "0:0", FIELD_BYTE_OFFSET), local, target) == (0, 12)
    assert resolve(CoreRelocation(0, 2, "0:1", FIELD_BYTE_OFFSET), local, target) == (4, 8)
    assert resolve(CoreRelocation(0, 2, "1:1", FIELD_BYTE_OFFSET), local, target) == (12, 24)
    assert resolve(CoreRelocation(0, 2, "0:1", FIELD_BYTE_SIZE), local, target) == (4, 4)
    assert resolve(CoreRelocation(0, 2, "0:0", FIELD_EXISTS), local, target) == (1, 1)
    assert resolve(CoreRelocation(0, 2, "0", TYPE_SIZE), local, target) == (8, 16)
    assert resolve(CoreRelocation(0, 2, "0", TYPE_EXISTS), local, target) == (1, 1)
    assert resolve(CoreRelocation(0, 3, "0", ENUMVAL_VALUE), local, target) == (3, 9)


def test_instructions_are_patched_or_poisoned():
    local, target = two_layouts()
    code = struct.pack("<BBhi", 0xB7, 1, 0, 4)  # r1 = 4 (offset of b, locally)
    code += struct.pack("<BBhi", 0x61, 0x21, 0, 0)  # r1 = *(u32 *)(r2 + 0) (field a)
    code += struct.pack("<BBhi", 0x95, 0, 0, 0)
    relos = [
        CoreRelocation(0, 2, "0:1", FIELD_BYTE_OFFSET),
        CoreRelocation(1, 2, "0:0", FIELD_BYTE_OFFSET),
    ]
    out = apply_core_relocations(code, relos, local, target, "p")
    assert struct.unpack_from("<i", out, 4)[0] == 8
    assert struct.unpack_from("<h", out, 10)[0] == 12
    # Without the type in the target, the instruction becomes libbpf's poison call.
    empty = btf.parse(BtfBuilder().bytes())
    out = apply_core_relocations(code, relos[:1], local, empty, "p")
    assert struct.unpack_from("<BBhi", out, 0) == (0x85, 0, 0, POISON_HELPER)


def test_fixture_relocations_are_read_and_linked(clang_build):
    prog = read(clang_build("elf_core")).programs["read_task"]
    kinds = sorted((r.access, r.kind) for r in prog.core_relocations)
    assert kinds == [("0:0", 0), ("0:0", 1), ("0:0", 2), ("0:1", 0), ("0:2", 2)]
    for relo in prog.core_relocations:
        assert prog.btf.type_name(relo.type_id) == "struct task_struct"


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="this kernel exposes no BTF")
def test_fixture_against_the_running_kernel(clang_build):
    spec = read(clang_build("elf_core"))
    with open(VMLINUX, "rb") as f:
        kernel = btf.parse(f.read())
    task = kernel.find("task_struct", "STRUCT")
    offsets = {m.name: m.offset // 8 for m in task.members}
    relos = {(r.access, r.kind): r for r in spec.programs["read_task"].core_relocations}
    assert resolve(relos["0:1", 0], spec.btf, kernel) == (4, offsets["pid"])
    assert resolve(relos["0:0", 0], spec.btf, kernel) == (0, offsets["tgid"])
    assert resolve(relos["0:2", 2], spec.btf, kernel) == (1, 0)  # no such field in the kernel


def test_every_candidate_is_tried_and_they_must_agree():
    local, _ = two_layouts()
    target = BtfBuilder()
    target.int_("int", 4, signed=True)  # 1
    target.add("thing", 4, 1, 4, struct.pack("<III", target.name("x"), 1, 0))  # 2: no a, no b
    members = struct.pack("<III", target.name("b"), 1, 0) + struct.pack(
        "<III", target.name("a"), 1, 32
    )
    target.add("thing___new", 4, 2, 8, members)  # 3: has both
    kernel = btf.parse(target.bytes())
    # The first candidate lacks the field; the flavored one has it.
    assert resolve(CoreRelocation(0, 2, "0:0", FIELD_BYTE_OFFSET), local, kernel) == (0, 4)
    assert resolve(CoreRelocation(0, 2, "0:1", FIELD_EXISTS), local, kernel) == (1, 1)
    # Two candidates that both have the field at different offsets: libbpf refuses too.
    target.add("thing___old", 4, 2, 8, struct.pack("<6I", target.name("a"), 1, 0, 0, 1, 32))
    kernel = btf.parse(target.bytes())
    with pytest.raises(CoreError, match="ambiguous"):
        resolve(CoreRelocation(0, 2, "0:0", FIELD_BYTE_OFFSET), local, kernel)
    # Type sizes differ between the candidates (4 and 8): ambiguous as well.
    with pytest.raises(CoreError, match="ambiguous"):
        resolve(CoreRelocation(0, 2, "0", TYPE_SIZE), local, kernel)


def _protos() -> btf.Btf:
    b = BtfBuilder()
    b.int_("int", 4, signed=True)  # 1
    b.int_("long", 8, signed=True)  # 2
    b.add("", 2, 0, 1)  # 3: int *
    b.add("", 13, 2, 1, struct.pack("<4I", b.name("x"), 1, b.name("p"), 3))  # 4: int (int, int *)
    b.add("", 13, 2, 1, struct.pack("<4I", 0, 2, 0, 3))  # 5: int (long, int *): ints agree
    b.add("", 13, 1, 1, struct.pack("<2I", 0, 1))  # 6: int (int): one parameter
    b.add("", 13, 2, 3, struct.pack("<4I", 0, 1, 0, 1))  # 7: int *(int, int): pointer vs int
    b.add("s", 4, 0, 0)  # 8: struct s
    b.add("", 2, 0, 8)  # 9: struct s *
    b.add("", 13, 2, 1, struct.pack("<4I", 0, 1, 0, 9))  # 10: int (int, struct s *)
    b.add("bits", 1, 0, 4, struct.pack("<I", (3 << 16) | 5))  # 11: an old-style bitfield int
    return btf.parse(b.bytes())


def test_types_are_compat_as_libbpf_defines_it():
    types = _protos()
    assert types_are_compat(types, 4, types, 5)
    assert not types_are_compat(types, 4, types, 6)  # parameter count
    assert not types_are_compat(types, 4, types, 7)  # second parameter: int * vs int
    assert not types_are_compat(types, 4, types, 10)  # int * vs struct s *
    assert types_are_compat(types, 9, types, 9) and types_are_compat(types, 0, types, 0)
    assert not types_are_compat(types, 11, types, 1)  # bitfield-like integers never match
