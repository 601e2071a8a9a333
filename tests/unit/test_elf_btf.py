"""bpfnb.elf.btf: the BTF parser, and BTF types as numpy layouts."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from bpfnb.elf import btf, read
from bpfnb.elf.btf_layout import layout_of_type
from bpfnb.errors import ElfError
from bpfnb.frames import frame

VMLINUX = "/sys/kernel/btf/vmlinux"


class BtfBuilder:
    """Builds raw BTF by hand, to test the parser on exactly the bytes we choose."""

    def __init__(self) -> None:
        self.types = b""
        self.strings = b"\0"

    def name(self, text: str) -> int:
        offset = len(self.strings)
        self.strings += text.encode() + b"\0"
        return offset

    def add(self, name: str, kind: int, vlen: int, size_or_type: int, extra: bytes = b"",
            kind_flag: bool = False) -> None:  # fmt: skip
        info = (kind << 24) | vlen | (1 << 31 if kind_flag else 0)
        self.types += struct.pack("<III", self.name(name) if name else 0, info, size_or_type)
        self.types += extra

    def int_(self, name: str, size: int, signed: bool = False) -> None:
        self.add(name, 1, 0, size, struct.pack("<I", (1 if signed else 0) << 24 | size * 8))

    def bytes(self) -> bytes:
        header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types),
                             len(self.types), len(self.strings))  # fmt: skip
        return header + self.types + self.strings


def test_parses_fixture_btf(clang_build):
    spec = read(clang_build("elf_btf_maps"))
    types = spec.btf
    key = types.find("key_t", "STRUCT")
    assert key is not None and [m.name for m in key.members] == ["pid", "comm"]
    assert types.size_of(key.id) == 20
    assert types.type_name(key.members[1].type_id) == "char[16]"
    assert types.find_id("count_getppid", "FUNC") > 0
    assert types.find_id("count_getppid", "STRUCT") == 0
    with pytest.raises(ValueError, match="unknown BTF kind"):
        types.find_id("x", "NOPE")


def test_hand_built_types_and_layout():
    b = BtfBuilder()
    b.int_("unsigned int", 4)  # 1
    b.int_("short", 2, signed=True)  # 2
    b.int_("char", 1)  # 3
    b.add("", 3, 0, 0, struct.pack("<III", 3, 1, 6))  # 4: char[6]
    members = struct.pack("<III", b.name("a"), 1, 0)
    members += struct.pack("<III", b.name("b"), 2, 32)
    members += struct.pack("<III", b.name("label"), 4, 48)
    b.add("pair", 4, 3, 12, members)  # 5: struct pair
    b.add("pair_t", 8, 0, 5)  # 6: typedef
    bits = struct.pack("<III", b.name("lo"), 1, (4 << 24) | 0)
    bits += struct.pack("<III", b.name("hi"), 1, (12 << 24) | 4)
    b.add("bits", 4, 2, 4, bits, kind_flag=True)  # 7
    types = btf.parse(b.bytes())
    assert len(types) == 8
    assert types.type_name(6) == "pair_t" and types.type_name(5) == "struct pair"
    layout = layout_of_type(types, 6)
    assert layout.dtype.names == ("a", "b", "label")
    assert layout.dtype["b"] == np.dtype("<i2") and layout.dtype["label"] == np.dtype("S6")
    assert layout.size == 12
    record = np.zeros(1, layout.dtype)
    record["a"], record["b"], record["label"] = 7, -2, b"hi"
    df = frame(record, layout)
    assert df.to_dict("records") == [{"a": 7, "b": -2, "label": "hi"}]
    bit_layout = layout_of_type(types, 7)
    value = np.array([(0xABC << 4) | 0x9], dtype="<u4").view(bit_layout.dtype)
    df = frame(value, bit_layout)
    assert df["lo"][0] == 0x9 and df["hi"][0] == 0xABC


def test_bitfields_unions_and_nesting_from_clang(clang_build):
    spec = read(clang_build("elf_bitfields"))
    layout = spec.maps["records"].value_layout
    assert layout.size == 32
    record = np.zeros(1, layout.dtype)
    raw = record.view(np.uint8)
    raw[0:4] = np.frombuffer(struct.pack("<I", 5 | (17 << 3) | (99 << 8)), np.uint8)
    raw[8:16] = np.frombuffer(struct.pack("<Q", 0x100000002), np.uint8)
    raw[16:20] = np.frombuffer(struct.pack("<hh", -3, 4), np.uint8)
    df = frame(record, layout)
    row = df.iloc[0]
    assert (row["flags.low"], row["flags.mid"], row["flags.high"]) == (5, 17, 99)
    assert row["as_u64"] == 0x100000002 and list(row["as_u32"]) == [2, 1]
    assert (row["point.x"], row["point.y"]) == (-3, 4)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d[:10], "shorter than the BTF header"),
        (lambda d: b"\x00\x00" + d[2:], "bad BTF magic"),
        (lambda d: d[:2] + b"\x02" + d[3:], "unsupported BTF version"),
        (lambda d: d[:12] + struct.pack("<I", 1 << 30) + d[16:], "out of bounds"),
        (lambda d: d[:-1], "out of bounds"),
    ],
)
def test_malformed_btf_raises_elf_error(mutate, message):
    b = BtfBuilder()
    b.int_("int", 4, signed=True)
    with pytest.raises(ElfError, match=message) as err:
        btf.parse(mutate(b.bytes()))
    assert err.value.section == ".BTF"


def test_circular_typedefs_are_caught():
    b = BtfBuilder()
    b.add("a", 8, 0, 2)  # typedef a -> 2
    b.add("b", 8, 0, 1)  # typedef b -> 1
    types = btf.parse(b.bytes())
    with pytest.raises(ElfError, match="circular"):
        types.skip_modifiers(1)
    with pytest.raises(ElfError):
        layout_of_type(types, 1)


def test_dangling_type_id():
    b = BtfBuilder()
    b.add("p", 2, 0, 99)  # pointer to a type that does not exist
    types = btf.parse(b.bytes())
    with pytest.raises(ElfError, match="does not exist"):
        types.type(types.type(1).type_id)


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="this kernel exposes no BTF")
def test_vmlinux_btf_finds_kernel_functions():
    with open(VMLINUX, "rb") as f:
        types = btf.parse(f.read())
    assert types.find_id("do_sys_openat2", "FUNC") > 0
    task = types.find("task_struct", "STRUCT")
    assert task is not None and any(m.name == "pid" for m in task.members)
    func_ids = types.find("bpf_func_id", "ENUM")
    assert func_ids is not None
    assert {m.name: m.value for m in func_ids.members}["BPF_FUNC_map_lookup_elem"] == 1


def _walk(types: btf.Btf) -> list[tuple[int, int]]:
    # The plain walk: one record after another, as include/uapi/linux/btf.h lays them out.
    extra = {1: 4, 3: 12, 14: 4, 17: 4}
    per_member = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
    data, pos, out = types._types, 0, []
    while pos < len(data):
        info = struct.unpack_from("<I", data, pos + 4)[0]
        kind = (info >> 24) & 0x1F
        out.append((pos, kind))
        pos += 12 + extra.get(kind, 0) + per_member.get(kind, 0) * (info & 0xFFFF)
    return out


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="this kernel exposes no BTF")
def test_vectorised_index_matches_the_plain_walk_on_vmlinux():
    with open(VMLINUX, "rb") as f:
        types = btf.parse(f.read())
    walked = _walk(types)
    assert len(types) == len(walked) + 1
    assert list(zip(types._offsets[1:], types._kinds[1:])) == walked


@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 17, 64])
def test_index_of_every_length_around_the_jump_size(count):
    b = BtfBuilder()
    for i in range(count):
        if i % 3 == 0:
            b.int_(f"i{i}", 4)
        elif i % 3 == 1:
            b.add(f"s{i}", 4, 2, 8, struct.pack("<6I", b.name("a"), 1, 0, b.name("b"), 1, 32))
        else:
            b.add(f"t{i}", 8, 0, 1)
    types = btf.parse(b.bytes())
    assert len(types) == count + 1
    assert list(zip(types._offsets[1:], types._kinds[1:])) == _walk(types)
    for i in range(count):
        name = ("i", "s", "t")[i % 3] + str(i)
        assert types.find_id(name, ("INT", "STRUCT", "TYPEDEF")[i % 3]) == i + 1


@pytest.mark.parametrize(
    "tail, message",
    [
        (struct.pack("<III", 0, 25 << 24, 0), "unknown type kind 25"),
        (struct.pack("<III", 0, 0, 0), "unknown type kind 0"),
        (struct.pack("<II", 0, 1 << 24), "truncated type"),  # a header cut short
        (struct.pack("<III", 0, (4 << 24) | 2, 8) + bytes(12), "truncated type"),  # members
        (struct.pack("<III", 0, 1 << 24, 4) + b"\0\0", "truncated type"),
    ],
)
def test_index_reports_the_first_bad_record(tail, message):
    b = BtfBuilder()
    b.int_("int", 4, signed=True)
    good = len(b.types)
    b.types += tail
    with pytest.raises(ElfError, match=message) as err:
        btf.parse(b.bytes())
    assert err.value.offset == 24 + good  # the record after the good one


def test_lookups_find_every_type_of_a_name_and_flavors():
    b = BtfBuilder()
    b.int_("int", 4, signed=True)  # 1
    b.add("task", 4, 0, 4)  # 2: struct task
    b.add("task___v2", 4, 0, 8)  # 3: a flavor of task
    b.add("task", 8, 0, 2)  # 4: typedef task
    b.add("task_struct", 4, 0, 4)  # 5: another name that starts the same
    b.add("a_____b", 4, 0, 4)  # 6: essential name "a"
    b.add("task", 4, 0, 16)  # 7: a second struct task
    types = btf.parse(b.bytes())
    assert types.ids_named("task") == [2, 4, 7]
    assert types.find_ids("task", "STRUCT") == [2, 7] and types.find_id("task", "TYPEDEF") == 4
    assert types.ids_with_essential_name("task") == [2, 3, 4, 7]
    assert types.ids_with_essential_name("a") == [6] and types.ids_named("a") == []
    assert types.ids_named("") == [] and types.find_id("nope", "STRUCT") == 0


def test_split_btf_continues_its_base():
    base = BtfBuilder()
    base.int_("int", 4, signed=True)  # 1
    base.add("shared", 4, 0, 4)  # 2
    base_types = btf.parse(base.bytes())
    # A module's BTF: its ids start after the base's, its strings after the base's strings, and
    # it may name types with the base's strings.
    strings = b"mod_func\0"
    own = struct.pack("<III", 0, 13 << 24, 1)  # 3: func_proto returning int (base id 1)
    own += struct.pack("<III", len(base.strings), (12 << 24) | 1, 3)  # 4: FUNC mod_func
    own += struct.pack("<III", base.strings.index(b"shared\0"), 4 << 24, 4)  # 5: struct shared
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(own), len(own), len(strings))
    split = btf.Btf(header + own + strings, "module BTF", base=base_types)
    assert len(split) == 6
    assert split.type(4).name == "mod_func" and split.type(4).type_id == 3
    assert split.type(1).name == "int" and split.kind_of(2) == "STRUCT"
    assert split.find_id("mod_func", "FUNC") == 4
    # Lookups in a split BTF find its own types, by its own or its base's strings.
    assert split.find_ids("shared", "STRUCT") == [5] and split.type(5).name == "shared"
    assert split.find_id("int", "INT") == 0 and base_types.find_id("int", "INT") == 1


def test_btf_files_are_mapped_or_read(tmp_path):
    from bpfnb.sys.kernel_btf import read_btf_file

    b = BtfBuilder()
    b.int_("int", 4, signed=True)
    path = tmp_path / "btf"
    path.write_bytes(b.bytes())
    mapped = read_btf_file(str(path))
    assert not isinstance(mapped, bytes)  # a regular file maps
    assert btf.parse(mapped).find_id("int", "INT") == 1
    (tmp_path / "empty").write_bytes(b"")
    assert read_btf_file(str(tmp_path / "empty")) == b""  # an empty file cannot map: read
