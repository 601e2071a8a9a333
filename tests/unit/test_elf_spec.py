"""Specs as plain data: constants, variables, names the kernel accepts, version codes."""

from __future__ import annotations

import pytest

from bpfnb.elf import read
from bpfnb.elf.kconfig import version_code
from bpfnb.elf.loader import kernel_name
from bpfnb.elf.variables import Variable, encode_value


def test_encode_value_checks_width_and_sign():
    u16 = Variable("x", ".rodata", 2, 2)
    s8 = Variable("y", ".rodata", 0, 1, signed=True)
    data = bytes(4)
    assert encode_value(u16, 0xBEEF, data, "little") == b"\0\0\xef\xbe"
    assert encode_value(s8, -1, data, "little") == b"\xff\0\0\0"
    assert encode_value(u16, True, data, "little") == b"\0\0\x01\0"
    with pytest.raises(ValueError, match="does not fit"):
        encode_value(u16, 1 << 16, data, "little")
    with pytest.raises(ValueError, match="does not fit"):
        encode_value(u16, -1, data, "little")
    with pytest.raises(ValueError, match="does not fit"):
        encode_value(s8, 128, data, "little")
    with pytest.raises(TypeError, match="cannot store"):
        encode_value(u16, 1.5, data, "little")


def test_string_constants(clang_build):
    spec = read(clang_build("elf_globals"))
    spec.constants["greeting"] = "hi"
    assert spec.constants["greeting"] == b"hi\0\0\0\0"
    with pytest.raises(ValueError, match="do not fit"):
        spec.constants["greeting"] = b"far too long"
    with pytest.raises(TypeError, match="not an integer"):
        spec.constants["greeting"] = 5
    with pytest.raises(TypeError, match="cannot be deleted"):
        del spec.constants["greeting"]
    assert "greeting" in repr(spec.constants)


def test_constants_are_only_read_only_globals(clang_build):
    spec = read(clang_build("elf_globals"))
    assert set(spec.constants) == {"verdict", "target_pid", "greeting"}
    assert {"hits", "seen_pid", "table"} <= set(spec.variables)  # .bss/.data: not constants
    with pytest.raises(KeyError):
        spec.constants["hits"] = 1


@pytest.mark.parametrize(
    "name, expected",
    [("counts", "counts"), ("tracepoint__raw_sys_enter", "tracepoint__raw"),
     (".rodata.str1.1", ".rodata.str1.1"), ("a-b/c", "a_b_c")],
)  # fmt: skip
def test_kernel_names(name, expected):
    assert kernel_name(name) == expected


@pytest.mark.parametrize(
    "release, code",
    [("6.18.0-1-amd64", 0x061200), ("5.15.0", 0x050F00), ("4.19.300", 0x0413FF), ("6.1", 0x060100)],
)
def test_version_code(release, code):
    assert version_code(release) == code
