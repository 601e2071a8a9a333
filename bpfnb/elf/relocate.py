"""Instruction rewriting: link subprograms into each program (read time), and put map fds into
map references (load time).

A function is a run of instructions in one ELF section. Linking copies the entry function,
then appends every function it calls (bpf-to-bpf calls, ``BPF_PSEUDO_CALL``), transitively,
and fixes each call's offset, as the kernel wants one flat instruction array per program.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from bpfnb.elf.btf import CoreRelocation, FuncInfo, LineInfo
from bpfnb.elf.spec import ExternReference, ProgramSpec, Reference
from bpfnb.errors import ElfError

__all__ = [
    "Function",
    "Link",
    "LinkedCode",
    "Symbol",
    "apply_fds",
    "link",
]

OP_CALL = 0x85
OP_LD_IMM64 = 0x18
PSEUDO_MAP_FD = 1
PSEUDO_MAP_VALUE = 2
PSEUDO_CALL = 1
PSEUDO_FUNC = 4

_MAX_FUNCTIONS = 4096


@dataclass(frozen=True)
class Symbol:
    """An ELF symbol, as relocations see it."""

    index: int
    name: str
    type: int  # STT_*
    bind: int
    section: int  # st_shndx
    value: int
    size: int
    visibility: int = 0  # STV_* (st_other & 3)


@dataclass(frozen=True)
class Link:
    """A relocation against one instruction: the symbol and what it resolves to.

    ``target`` is ``("map", name)``, ``("data", map name, section offset)``,
    ``("code", section index)`` or ``("extern", symbol name)``.
    """

    symbol: Symbol
    kind: str
    target: str
    section: int = 0
    offset: int = 0


@dataclass
class Function:
    """A run of instructions ``[start, start + count)`` of section ``section`` (index)."""

    name: str
    section: int
    section_name: str
    start: int
    count: int
    code: bytes  # the whole section's bytes
    links: dict[int, Link] = field(default_factory=dict)  # section insn index → relocation


@dataclass
class LinkedCode:
    instructions: bytes
    references: list[Reference]
    func_info: list[FuncInfo]
    line_info: list[LineInfo]
    functions: dict[int, str]
    core_relocations: list[CoreRelocation] = field(default_factory=list)
    externs: list[ExternReference] = field(default_factory=list)


def link(
    entry: Function,
    find_function: Callable[[int, int], Function | None],
    func_info: Callable[[str], list[FuncInfo]],
    line_info: Callable[[str], list[LineInfo]],
    endian: str,
    core_relocations: Callable[[str], list[CoreRelocation]] = lambda section: [],
) -> LinkedCode:
    """Link ``entry`` with every function it calls.

    ``find_function(section, insn)`` returns the function holding that instruction.
    """
    order: list[Function] = [entry]
    base: dict[tuple[int, int], int] = {(entry.section, entry.start): 0}
    out = bytearray(entry.code[entry.start * 8 : (entry.start + entry.count) * 8])
    references: list[Reference] = []
    externs: list[ExternReference] = []
    i = 0
    while i < len(order):
        fn = order[i]
        fn_base = base[(fn.section, fn.start)]
        k = 0
        while k < fn.count:
            pc = fn_base + k
            index = fn.start + k
            at = pc * 8
            opcode, regs = out[at], out[at + 1]
            src = regs >> 4
            reloc = fn.links.get(index)
            where = (fn.section_name, index * 8)
            if opcode == OP_LD_IMM64:
                if k + 1 >= fn.count:
                    raise ElfError("64-bit load without its second half", *where)
                if reloc is not None:
                    if reloc.kind == "map":
                        out[at + 1] = (regs & 0x0F) | (PSEUDO_MAP_FD << 4)
                        references.append(Reference(pc, "map", reloc.target))
                    elif reloc.kind == "data":
                        imm = struct.unpack_from(endian + "i", out, at + 4)[0]
                        out[at + 1] = (regs & 0x0F) | (PSEUDO_MAP_VALUE << 4)
                        struct.pack_into(endian + "i", out, at + 4, 0)
                        references.append(Reference(pc, "data", reloc.target, reloc.offset + imm))
                    elif reloc.kind == "code":
                        # The address of a function (a callback): BPF_PSEUDO_FUNC.
                        imm = struct.unpack_from(endian + "i", out, at + 4)[0]
                        target = (reloc.offset + imm) // 8
                        new = _place(reloc.section, target, find_function, order, base, out, where)
                        out[at + 1] = (regs & 0x0F) | (PSEUDO_FUNC << 4)
                        struct.pack_into(endian + "i", out, at + 4, new - pc - 1)
                    else:
                        # The address of a __ksym extern: filled in when the object loads.
                        externs.append(ExternReference(pc, reloc.target, call=False))
                k += 2
                continue
            if opcode == OP_CALL and src == PSEUDO_CALL:
                imm = struct.unpack_from(endian + "i", out, at + 4)[0]
                if reloc is not None and reloc.kind == "extern":
                    # A kfunc: the call gets its kernel BTF id when the object loads.
                    externs.append(ExternReference(pc, reloc.target, call=True))
                    k += 1
                    continue
                if reloc is not None:
                    if reloc.kind != "code":
                        raise ElfError(
                            f"call to {reloc.symbol.name!r}, which is not a function", *where
                        )
                    section, target = reloc.section, reloc.offset // 8 + imm + 1
                else:
                    section, target = fn.section, index + imm + 1
                new = _place(section, target, find_function, order, base, out, where)
                struct.pack_into(endian + "i", out, at + 4, new - pc - 1)
            elif reloc is not None:
                raise ElfError(
                    f"relocation against {reloc.symbol.name!r} on an instruction "
                    f"(opcode {opcode:#04x}) that takes none",
                    *where,
                )
            k += 1
        i += 1
    funcs: list[FuncInfo] = []
    lines: list[LineInfo] = []
    cores: list[CoreRelocation] = []
    names: dict[int, str] = {}
    for fn in order:
        fn_base = base[(fn.section, fn.start)]
        names[fn_base] = fn.name
        end = fn.start + fn.count
        shift = fn_base - fn.start
        funcs += [
            FuncInfo(r.insn + shift, r.type_id)
            for r in func_info(fn.section_name)
            if fn.start <= r.insn < end
        ]
        lines += [r.shifted(shift) for r in line_info(fn.section_name) if fn.start <= r.insn < end]
        cores += [
            r.shifted(shift) for r in core_relocations(fn.section_name) if fn.start <= r.insn < end
        ]
    funcs.sort(key=lambda r: r.insn)
    lines.sort(key=lambda r: r.insn)
    return LinkedCode(bytes(out), references, funcs, lines, names, cores, externs)


def _place(
    section: int,
    target: int,
    find_function: Callable[[int, int], Function | None],
    order: list[Function],
    base: dict[tuple[int, int], int],
    out: bytearray,
    where: tuple[str, int],
) -> int:
    # Where instruction ``target`` of ``section`` lands in the linked program (appending its
    # function the first time).
    fn = find_function(section, target)
    if fn is None:
        raise ElfError(
            f"call to instruction {target} of section {section}: no function there", *where
        )
    key = (fn.section, fn.start)
    if key not in base:
        if len(order) >= _MAX_FUNCTIONS:
            raise ElfError("too many subprograms", *where)
        base[key] = len(out) // 8
        order.append(fn)
        out += fn.code[fn.start * 8 : (fn.start + fn.count) * 8]
    return base[key] + (target - fn.start)


def apply_fds(
    prog: ProgramSpec, fds: dict[str, int], endian: str = "<", code: bytes | None = None
) -> bytes:
    """The program's instructions (or ``code``) with each map reference holding its map's fd."""
    out = bytearray(prog.instructions if code is None else code)
    for ref in prog.references:
        fd = fds[ref.map]
        struct.pack_into(endian + "i", out, ref.insn * 8 + 4, fd)
        if ref.kind == "data":
            struct.pack_into(endian + "i", out, ref.insn * 8 + 12, ref.offset)
    return bytes(out)
