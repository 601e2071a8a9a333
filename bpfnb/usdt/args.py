"""USDT argument strings (x86-64) → libbpf's argument specs, and those specs packed to bytes.

A probe's arguments are written by the assembler, one per space, as ``SIZE@OPERAND``: a negative
size is a signed value, and the operand is a constant (``-4@$5``), a register (``8@%rax``), a
register plus an offset to read memory at (``-4@-20(%rbp)``), or a base plus a scaled index
(``8@8(%rax,%rdx,8)``).

The packed layout is ``struct __bpf_usdt_spec`` of libbpf's ``usdt.bpf.h`` (libbpf 0.8 on): the
spec a BPF program reads to fetch the arguments (``bpf_usdt_arg()``), one per probe site. The
scaled-index arguments libbpf 1.7 added do not fit it, and are refused when packing::

    struct __bpf_usdt_arg_spec {       struct __bpf_usdt_spec {
        __u64 val_off;                     struct __bpf_usdt_arg_spec args[12];
        enum __bpf_usdt_arg_type arg_type; __u64 usdt_cookie;
        short reg_off;                     short arg_cnt;
        bool arg_signed;               };  /* 208 bytes */
        char arg_bitshift;
    };  /* 16 bytes */
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass, replace

__all__ = [
    "ARG_SPEC",
    "MAX_ARGS",
    "PT_REGS_OFFSETS",
    "PT_REGS_SIZE",
    "SPEC",
    "ArgType",
    "UsdtArg",
    "pack_spec",
    "parse_arg",
    "parse_args",
]

#: ``BPF_USDT_MAX_ARG_CNT``.
MAX_ARGS = 12
#: ``struct __bpf_usdt_arg_spec``: val_off, arg_type, reg_off, arg_signed, arg_bitshift.
ARG_SPEC = struct.Struct("<QIhBb")
#: ``struct __bpf_usdt_spec``: the arguments, usdt_cookie, arg_cnt, and padding to 8 bytes.
SPEC = struct.Struct("<" + "16s" * MAX_ARGS + "Qh6x")


class ArgType(enum.IntEnum):
    """``enum __bpf_usdt_arg_type``; SIB is libbpf 1.7's addition, which the layout above lacks."""

    CONST = 0
    REG = 1
    REG_DEREF = 2
    SIB = 3


#: Offsets of the registers in x86-64 ``struct pt_regs`` (what a uprobe program's context is).
PT_REGS_OFFSETS = {
    "r15": 0,
    "r14": 8,
    "r13": 16,
    "r12": 24,
    "rbp": 32,
    "rbx": 40,
    "r11": 48,
    "r10": 56,
    "r9": 64,
    "r8": 72,
    "rax": 80,
    "rcx": 88,
    "rdx": 96,
    "rsi": 104,
    "rdi": 112,
    "rip": 128,
    "rsp": 152,
}
PT_REGS_SIZE = 168

# The 32-, 16- and 8-bit names of each register (the low bits: a narrower argument is read
# from the whole register and cut down by arg_bitshift).
_ALIASES = {
    "rax": ("eax", "ax", "al"),
    "rbx": ("ebx", "bx", "bl"),
    "rcx": ("ecx", "cx", "cl"),
    "rdx": ("edx", "dx", "dl"),
    "rsi": ("esi", "si", "sil"),
    "rdi": ("edi", "di", "dil"),
    "rbp": ("ebp", "bp", "bpl"),
    "rsp": ("esp", "sp", "spl"),
    **{f"r{n}": (f"r{n}d", f"r{n}w", f"r{n}b") for n in range(8, 16)},
}
_REGISTERS = {
    alias: PT_REGS_OFFSETS[full] for full, aliases in _ALIASES.items() for alias in (full, *aliases)
} | {"rip": PT_REGS_OFFSETS["rip"]}

_NUMBER = r"[-+]?(?:0[xX][0-9a-fA-F]+|\d+)"
_ARG = re.compile(r"^\s*(?:(?P<size>[-+]?\d+)\s*@)?\s*(?P<operand>\S.*?)\s*$")
_CONST = re.compile(rf"^\$(?P<value>{_NUMBER})$")
_REG = re.compile(r"^%(?P<reg>\w+)$")
_DEREF = re.compile(rf"^(?P<off>{_NUMBER})?\(\s*%(?P<reg>\w+)\s*\)$")
_SIB = re.compile(
    rf"^(?P<off>{_NUMBER})?\(\s*%(?P<reg>\w+)\s*,\s*%(?P<index>\w+)\s*(?:,\s*(?P<scale>\d+)\s*)?\)$"
)
_SIZES = (1, 2, 4, 8)
_U64 = (1 << 64) - 1


@dataclass(frozen=True)
class UsdtArg:
    """One parsed argument: where its value is and how wide it is.

    ``val_off`` is the constant (CONST) or the memory offset (REG_DEREF, SIB); ``reg_off`` is
    the offset of ``reg`` in ``struct pt_regs``; ``index_off`` and ``scale`` are the SIB index.
    """

    text: str
    type: ArgType
    size: int
    signed: bool
    val_off: int = 0
    reg: str = ""
    reg_off: int = 0
    index: str = ""
    index_off: int = 0
    scale: int = 1

    @property
    def bitshift(self) -> int:
        """How many high bits of the 64-bit read to clear (and sign-extend, if signed)."""
        return 64 - 8 * self.size

    def pack(self) -> bytes:
        """This argument as ``struct __bpf_usdt_arg_spec`` (16 bytes)."""
        if self.type is ArgType.SIB:
            raise ValueError(
                f"USDT argument {self.text!r} uses a scaled index, which libbpf's "
                "__bpf_usdt_arg_spec before libbpf 1.7 cannot express"
            )
        return ARG_SPEC.pack(
            self.val_off & _U64, int(self.type), self.reg_off, int(self.signed), self.bitshift
        )


def _register(name: str, text: str) -> int:
    try:
        return _REGISTERS[name]
    except KeyError:
        raise ValueError(f"USDT argument {text!r}: unknown x86-64 register %{name}") from None


def parse_arg(text: str) -> UsdtArg:
    """One ``SIZE@OPERAND`` argument; a missing size means 8 unsigned bytes."""
    match = _ARG.match(text)
    if match is None:
        raise ValueError(f"empty USDT argument {text!r}")
    size_text, operand = match.group("size"), match.group("operand")
    size = int(size_text) if size_text else 8
    if abs(size) not in _SIZES:
        raise ValueError(f"USDT argument {text!r}: size must be 1, 2, 4 or 8 bytes")
    base = UsdtArg(text=text.strip(), type=ArgType.CONST, size=abs(size), signed=size < 0)
    if found := _CONST.match(operand):
        return replace(base, val_off=int(found["value"], 0))
    if found := _REG.match(operand):
        reg = found["reg"]
        return replace(base, type=ArgType.REG, reg=reg, reg_off=_register(reg, text))
    if found := _DEREF.match(operand):
        reg = found["reg"]
        return replace(
            base,
            type=ArgType.REG_DEREF,
            val_off=int(found["off"], 0) if found["off"] else 0,
            reg=reg,
            reg_off=_register(reg, text),
        )
    if found := _SIB.match(operand):
        reg, index = found["reg"], found["index"]
        scale = int(found["scale"]) if found["scale"] else 1
        if scale not in (1, 2, 4, 8):
            raise ValueError(f"USDT argument {text!r}: scale must be 1, 2, 4 or 8")
        return replace(
            base,
            type=ArgType.SIB,
            val_off=int(found["off"], 0) if found["off"] else 0,
            reg=reg,
            reg_off=_register(reg, text),
            index=index,
            index_off=_register(index, text),
            scale=scale,
        )
    raise ValueError(
        f"USDT argument {text!r}: not a constant ($N), register (%reg), memory (N(%reg)) "
        "or scaled-index (N(%base,%index,scale)) operand"
    )


def parse_args(text: str) -> list[UsdtArg]:
    """Every argument of a note's argument string (``"-4@%edi 8@-16(%rbp)"``)."""
    args = [parse_arg(part) for part in _split(text)]
    if len(args) > MAX_ARGS:
        raise ValueError(f"{len(args)} USDT arguments; at most {MAX_ARGS} are supported")
    return args


def _split(text: str) -> list[str]:
    # Arguments are separated by spaces, but not inside parentheses ("8@(%rax, %rdx, 8)").
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char.isspace() and depth == 0:
            if current:
                parts.append(current)
            current = ""
        else:
            current += char
    if current:
        parts.append(current)
    return parts


def pack_spec(args: list[UsdtArg] | str, cookie: int = 0) -> bytes:
    """``struct __bpf_usdt_spec`` (208 bytes) for a probe site's arguments (or their string),
    with ``cookie`` as its ``usdt_cookie``."""
    parsed = parse_args(args) if isinstance(args, str) else list(args)
    if len(parsed) > MAX_ARGS:
        raise ValueError(f"{len(parsed)} USDT arguments; at most {MAX_ARGS} are supported")
    packed = [arg.pack() for arg in parsed]
    packed += [bytes(ARG_SPEC.size)] * (MAX_ARGS - len(packed))
    return SPEC.pack(*packed, cookie & _U64, len(parsed))
