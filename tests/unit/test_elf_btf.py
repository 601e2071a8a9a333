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
