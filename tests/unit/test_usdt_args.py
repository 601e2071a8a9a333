"""USDT argument strings → libbpf argument specs, and the packed ``struct __bpf_usdt_spec``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bpfnb.usdt.args import (
    MAX_ARGS,
    PT_REGS_OFFSETS,
    SPEC,
    ArgType,
    UsdtArg,
    pack_spec,
    parse_arg,
    parse_args,
)
from tests.conftest import need

USDT_HEADER = Path("/usr/include/bpf/usdt.bpf.h")


@pytest.mark.parametrize(
    ("text", "kind", "size", "signed", "val_off", "reg", "reg_off"),
    [
        ("-4@%edi", ArgType.REG, 4, True, 0, "edi", 112),
        ("8@%rax", ArgType.REG, 8, False, 0, "rax", 80),
        ("-2@%r14w", ArgType.REG, 2, True, 0, "r14w", 8),
        ("1@%sil", ArgType.REG, 1, False, 0, "sil", 104),
        ("8@-16(%rbp)", ArgType.REG_DEREF, 8, False, -16, "rbp", 32),
        ("-4@112(%rsp)", ArgType.REG_DEREF, 4, True, 112, "rsp", 152),
        ("2@(%r9)", ArgType.REG_DEREF, 2, False, 0, "r9", 64),
        ("8@0x10(%r12)", ArgType.REG_DEREF, 8, False, 16, "r12", 24),
        ("4@$5", ArgType.CONST, 4, False, 5, "", 0),
        ("-4@$-9", ArgType.CONST, 4, True, -9, "", 0),
        ("-8@$0x20", ArgType.CONST, 8, True, 32, "", 0),
    ],
)
def test_parse_arg(text, kind, size, signed, val_off, reg, reg_off) -> None:
    arg = parse_arg(text)
    assert (arg.type, arg.size, arg.signed, arg.val_off) == (kind, size, signed, val_off)
    assert (arg.reg, arg.reg_off, arg.bitshift) == (reg, reg_off, 64 - 8 * size)


def test_scaled_index_parses_but_does_not_pack() -> None:
    arg = parse_arg("-8@8(%rax,%rdx,8)")
    assert (arg.type, arg.val_off, arg.reg_off, arg.index, arg.index_off, arg.scale) == (
        ArgType.SIB,
        8,
        80,
        "rdx",
        96,
        8,
    )
    assert parse_arg("1@(%rbp,%rax)").scale == 1
    with pytest.raises(ValueError, match="scaled index"):
        pack_spec("-8@8(%rax,%rdx,8)")


def test_parse_args_splits_on_spaces_outside_parentheses() -> None:
    args = parse_args("-4@%edi  8@(%rax, %rdx, 4) 4@$5")
    assert [a.text for a in args] == ["-4@%edi", "8@(%rax, %rdx, 4)", "4@$5"]
    assert parse_args("") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3@%eax", "size must be"),
        ("4@%ah", "unknown x86-64 register"),
        ("4@%xmm0", "unknown x86-64 register"),
        ("8@counter(%rip)", "not a constant"),
        ("8@(%rax,%rdx,3)", "scale must be"),
    ],
)
def test_bad_args_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_arg(text)


def test_too_many_args() -> None:
    with pytest.raises(ValueError, match="at most 12"):
        parse_args(" ".join(["8@%rax"] * (MAX_ARGS + 1)))


def test_pack_spec_fields() -> None:
    packed = pack_spec("-4@%edi 8@-16(%rbp)", cookie=0x1122)
    assert len(packed) == SPEC.size == 208
    first, second = packed[:16], packed[16:32]
    assert first == (0).to_bytes(8, "little") + bytes([1, 0, 0, 0, 112, 0, 1, 32])
    assert second == (2**64 - 16).to_bytes(8, "little") + bytes([2, 0, 0, 0, 32, 0, 0, 0])
    assert packed[32:192] == bytes(160)
    assert packed[192:200] == (0x1122).to_bytes(8, "little")
    assert packed[200:202] == (2).to_bytes(2, "little")


def _c_initializer(args: list[UsdtArg], cookie: int) -> str:
    types = {ArgType.CONST: "CONST", ArgType.REG: "REG", ArgType.REG_DEREF: "REG_DEREF"}
    fields = ", ".join(
        f"[{i}] = {{ .val_off = {a.val_off & (2**64 - 1)}ULL, "
        f".arg_type = BPF_USDT_ARG_{types[a.type]}, .reg_off = {a.reg_off}, "
        f".arg_signed = {'true' if a.signed else 'false'}, .arg_bitshift = {a.bitshift} }}"
        for i, a in enumerate(args)
    )
    return f"{{ .args = {{ {fields} }}, .usdt_cookie = {cookie}ULL, .arg_cnt = {len(args)} }}"


def test_packing_matches_libbpf_usdt_header_and_pt_regs(tmp_path: Path) -> None:
    """clang lays out the same spec from libbpf's own header for the BPF target; the register
    offsets are checked against the UAPI ``struct pt_regs``."""
    need(shutil.which("clang") is not None, "clang is not installed")
    need(USDT_HEADER.exists(), f"{USDT_HEADER} is missing (install libbpf-dev)")
    args = parse_args("-4@%edi 8@-16(%rbp) 4@$5 -1@%r8b 2@-3(%rsp) -8@$-9")
    cookie = 0xDEADBEEF01
    asserts = "\n".join(
        f'_Static_assert(__builtin_offsetof(struct pt_regs, {reg}) == {off}, "{reg}");'
        for reg, off in PT_REGS_OFFSETS.items()
    )
    source = tmp_path / "spec.c"
    source.write_text(
        "#include <stdbool.h>\n#include <linux/bpf.h>\n#include <asm/ptrace.h>\n"
        "#include <bpf/usdt.bpf.h>\n"
        f"{asserts}\n"
        f'_Static_assert(BPF_USDT_MAX_ARG_CNT == {MAX_ARGS}, "max args");\n'
        f"struct __bpf_usdt_spec spec = {_c_initializer(args, cookie)};\n"
    )
    obj = tmp_path / "spec.o"
    # <asm/ptrace.h> lives in the multiarch directory, which clang -target bpf does not search.
    ptrace = sorted(Path("/usr/include").glob("x86_64-*/asm/ptrace.h"))
    need(bool(ptrace), "no x86-64 <asm/ptrace.h> (install linux-libc-dev)")
    include = str(ptrace[0].parent.parent)
    subprocess.run(
        ["clang", "-target", "bpf", "-D__TARGET_ARCH_x86", "-O2", "-c", str(source)]
        + ["-o", str(obj), "-I", include],
        check=True,
        capture_output=True,
        text=True,
    )
    with open(obj, "rb") as f:
        elf = ELFFile(f)
        symbol = elf.get_section_by_name(".symtab").get_symbol_by_name("spec")[0]
        data = elf.get_section(symbol["st_shndx"]).data()
        laid_out = data[symbol["st_value"] : symbol["st_value"] + symbol["st_size"]]
    assert laid_out == pack_spec(args, cookie=cookie)
