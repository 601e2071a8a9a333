"""A small BTF parser: ``.BTF`` type information (``include/uapi/linux/btf.h``).

:func:`parse` walks the type section once, recording where each type starts, and decodes a
type only when asked (:meth:`Btf.type`), so the 5 MB ``/sys/kernel/btf/vmlinux`` parses in a
fraction of a second. Every read is bounds-checked: malformed data raises
:class:`bpfnb.errors.ElfError` naming the section and the offset.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from bpfnb.errors import ElfError
from bpfnb.sys.kernel_btf import VMLINUX_BTF, file_identity, read_vmlinux_btf

__all__ = [
    "KINDS",
    "Btf",
    "BtfExt",
    "BtfType",
    "CoreRelocation",
    "FuncInfo",
    "LineInfo",
    "Member",
    "encode_func_info",
    "encode_line_info",
    "parse",
    "parse_ext",
    "vmlinux",
]

MAGIC = 0xEB9F

# ``BTF_KIND_*``, by number.
KINDS = (
    "UNKN",
    "INT",
    "PTR",
    "ARRAY",
    "STRUCT",
    "UNION",
    "ENUM",
    "FWD",
    "TYPEDEF",
    "VOLATILE",
    "CONST",
    "RESTRICT",
    "FUNC",
    "FUNC_PROTO",
    "VAR",
    "DATASEC",
    "FLOAT",
    "DECL_TAG",
    "TYPE_TAG",
    "ENUM64",
)
_KIND_NUMBER = {name: number for number, name in enumerate(KINDS)}

# Bytes that follow ``struct btf_type`` (12 bytes): fixed, or per member (times vlen).
_FIXED_EXTRA = {1: 4, 3: 12, 14: 4, 17: 4}
_PER_MEMBER = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}

# Kinds whose third word is a size; for the others it is a type id.
_SIZED = {1, 4, 5, 6, 15, 16, 19}
# Kinds that only qualify or rename another type.
_MODIFIERS = {8, 9, 10, 11, 18}

INT_SIGNED = 1
INT_CHAR = 2
INT_BOOL = 4

# Longest chain of typedefs/qualifiers/arrays followed before calling the data circular.
_MAX_DEPTH = 64


@dataclass(frozen=True)
class Member:
    """A struct/union member, enum value, function parameter or DATASEC variable.

    ``offset`` is in bits for struct members and in bytes for DATASEC entries; ``bitfield_size``
    is 0 unless the member is a bitfield; ``value`` is an enum constant.
    """

    name: str
    type_id: int = 0
    offset: int = 0
    bitfield_size: int = 0
    value: int = 0
    size: int = 0


@dataclass(frozen=True)
class BtfType:
    """One decoded ``struct btf_type`` with what follows it."""

    id: int
    kind: str
    name: str
    size: int = 0  # INT, STRUCT, UNION, ENUM*, DATASEC, FLOAT
    type_id: int = 0  # PTR, TYPEDEF, qualifiers, FUNC, VAR, DECL_TAG, ARRAY element
    members: tuple[Member, ...] = ()
    kind_flag: bool = False
    # INT: encoding (INT_SIGNED | INT_CHAR | INT_BOOL), bit offset and width.
    encoding: int = 0
    bits: int = 0
    # ARRAY: index type and element count.
    index_type_id: int = 0
    nelems: int = 0
    # VAR: linkage; FUNC: linkage (from vlen); DECL_TAG: component index.
    linkage: int = 0
    component_idx: int = -1

    @property
    def signed(self) -> bool:
        return bool(self.encoding & INT_SIGNED)


class Btf:
    """Parsed BTF: types by id (id 0 is ``void``), names, and the raw bytes for loading."""

    def __init__(self, data: bytes, section: str = ".BTF", base: Btf | None = None) -> None:
        self.raw = bytes(data)
        self.section = section
        self._check(len(data) >= 24, "shorter than the BTF header", 0)
        magic = struct.unpack_from("<H", data, 0)[0]
        if magic == MAGIC:
            self.endian = "<"
        elif magic == 0x9FEB:
            self.endian = ">"
        else:
            raise ElfError(f"bad BTF magic {magic:#06x}", section, 0)
        e = self.endian
        version, _flags, hdr_len = struct.unpack_from(e + "BBI", data, 2)
        self._check(version == 1, f"unsupported BTF version {version}", 2)
        self._check(24 <= hdr_len <= len(data), f"bad BTF header length {hdr_len}", 4)
        type_off, type_len, str_off, str_len = struct.unpack_from(e + "4I", data, 8)
        types_start = hdr_len + type_off
        strings_start = hdr_len + str_off
        self._check(types_start + type_len <= len(data), "type section out of bounds", 8)
        self._check(strings_start + str_len <= len(data), "string section out of bounds", 16)
        self._strings = data[strings_start : strings_start + str_len]
        self._strings_offset = strings_start
        self._types = data[types_start : types_start + type_len]
        self._types_offset = types_start
        self._offsets: list[int] = [-1]  # id 0 is void
        self._kinds: list[int] = [0]
        self._cache: dict[int, BtfType] = {}
        self._by_name: dict[tuple[str, int], int] | None = None
        self._index()

    # -- parsing ---------------------------------------------------------------------------------

    def _check(self, condition: bool, message: str, offset: int) -> None:
        if not condition:
            raise ElfError(message, self.section, offset)

    def _index(self) -> None:
        types = self._types
        end = len(types)
        unpack = struct.Struct(self.endian + "III").unpack_from
        offsets, kinds = self._offsets, self._kinds
        fixed, per_member = _FIXED_EXTRA, _PER_MEMBER
        pos = 0
        while pos < end:
            if pos + 12 > end:
                raise ElfError("truncated type", self.section, self._types_offset + pos)
            info = unpack(types, pos)[1]
            kind = (info >> 24) & 0x1F
            if kind == 0 or kind >= len(KINDS):
                raise ElfError(f"unknown type kind {kind}", self.section, self._types_offset + pos)
            offsets.append(pos)
            kinds.append(kind)
            pos += 12 + fixed.get(kind, 0) + per_member.get(kind, 0) * (info & 0xFFFF)
        if pos != end:
            raise ElfError("truncated type", self.section, self._types_offset + offsets[-1])

    def string(self, offset: int) -> str:
        """The string at ``offset`` of the string section."""
        strings = self._strings
        if offset >= len(strings) or offset < 0:
            raise ElfError(f"string offset {offset} out of bounds", self.section, offset)
        end = strings.find(b"\0", offset)
        if end < 0:
            raise ElfError("unterminated string", self.section, self._strings_offset + offset)
        return strings[offset:end].decode("utf-8", errors="replace")

    def __len__(self) -> int:
        """Number of type ids, counting ``void`` (id 0)."""
        return len(self._offsets)

    def offset_of(self, type_id: int) -> int:
        """Where type ``type_id`` starts in the raw BTF (the type section's start for void or
        an unknown id)."""
        if 0 < type_id < len(self._offsets):
            return self._types_offset + self._offsets[type_id]
        return self._types_offset

    def kind_of(self, type_id: int) -> str:
        self._check_id(type_id)
        return KINDS[self._kinds[type_id]]

    def _check_id(self, type_id: int) -> None:
        if not 0 <= type_id < len(self._offsets):
            # Reported at the type section's start: the referring field is not known here.
            raise ElfError(f"type id {type_id} does not exist", self.section, self._types_offset)

    def type(self, type_id: int) -> BtfType:
        """The decoded type ``type_id`` (0 is ``void``)."""
        cached = self._cache.get(type_id)
        if cached is not None:
            return cached
        self._check_id(type_id)
        decoded = BtfType(0, "VOID", "void") if type_id == 0 else self._decode(type_id)
        self._cache[type_id] = decoded
        return decoded

    def _decode(self, type_id: int) -> BtfType:
        e, data, pos = self.endian, self._types, self._offsets[type_id]
        name_off, info, size_or_type = struct.unpack_from(e + "III", data, pos)
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        kind_flag = bool(info >> 31)
        sized = kind in _SIZED
        t = BtfType(
            id=type_id,
            kind=KINDS[kind],
            name=self.string(name_off),
            size=size_or_type if sized else 0,
            type_id=0 if sized else size_or_type,
            kind_flag=kind_flag,
        )
        extra = pos + 12
        if kind == 1:  # INT
            word = struct.unpack_from(e + "I", data, extra)[0]
            return replace(t, encoding=(word >> 24) & 0xF, bits=word & 0xFF)
        if kind == 3:  # ARRAY
            elem, index, nelems = struct.unpack_from(e + "III", data, extra)
            return replace(t, type_id=elem, index_type_id=index, nelems=nelems)
        if kind == 12:  # FUNC: vlen is the linkage
            return replace(t, linkage=vlen)
        if kind == 14:  # VAR
            return replace(t, linkage=struct.unpack_from(e + "I", data, extra)[0])
        if kind == 17:  # DECL_TAG
            return replace(t, component_idx=struct.unpack_from(e + "i", data, extra)[0])
        if kind not in _PER_MEMBER:
            return t
        members = []
        step = _PER_MEMBER[kind]
        for i in range(vlen):
            at = extra + step * i
            if kind in (4, 5):  # STRUCT, UNION: offsets in bits
                m_name, m_type, m_off = struct.unpack_from(e + "III", data, at)
                if kind_flag:
                    members.append(
                        Member(self.string(m_name), m_type, m_off & 0xFFFFFF, m_off >> 24)
                    )
                else:
                    members.append(Member(self.string(m_name), m_type, m_off))
            elif kind == 6:  # ENUM
                m_name, value = struct.unpack_from(e + ("Ii" if kind_flag else "II"), data, at)
                members.append(Member(self.string(m_name), value=value))
            elif kind == 19:  # ENUM64
                m_name, lo, hi = struct.unpack_from(e + "III", data, at)
                value = (hi << 32) | lo
                if kind_flag and value >= 1 << 63:
                    value -= 1 << 64
                members.append(Member(self.string(m_name), value=value))
            elif kind == 13:  # FUNC_PROTO parameters
                m_name, m_type = struct.unpack_from(e + "II", data, at)
                members.append(Member(self.string(m_name), m_type))
            else:  # DATASEC: variables, offsets in bytes
                m_type, m_off, m_size = struct.unpack_from(e + "III", data, at)
                members.append(Member("", m_type, m_off, size=m_size))
        return replace(t, members=tuple(members))

    def for_kernel(self, section_sizes: dict[str, int], offsets: dict[str, int]) -> bytes:
        """The raw BTF with DATASEC sizes and variable offsets filled in, as the kernel wants.

        clang leaves both zero in an object file: they are only known from the ELF section
        sizes and symbol values (``section_sizes`` by section name, ``offsets`` by variable).
        """
        out = bytearray(self.raw)
        e = self.endian
        for type_id, kind in enumerate(self._kinds):
            if kind != 15:  # DATASEC
                continue
            t = self.type(type_id)
            at = self._types_offset + self._offsets[type_id]
            if t.name in section_sizes:
                struct.pack_into(e + "I", out, at + 8, section_sizes[t.name])
            entries = []
            for entry in t.members:
                var = self.type(entry.type_id) if 0 < entry.type_id < len(self) else None
                offset = offsets.get(var.name, entry.offset) if var is not None else entry.offset
                entries.append((offset, entry.type_id, entry.size))
                if var is not None and var.kind == "VAR" and var.linkage == 2:
                    # An extern the loader provides (__kconfig): the kernel takes only
                    # allocated variables.
                    struct.pack_into(e + "I", out, self.offset_of(var.id) + 12, 1)
            for i, (offset, var_id, size) in enumerate(sorted(entries)):
                struct.pack_into(e + "III", out, at + 12 + 12 * i, var_id, offset, size)
        return bytes(out)

    # -- queries ---------------------------------------------------------------------------------

    def types(self) -> Iterator[BtfType]:
        """Every type, in id order (without ``void``)."""
        for type_id in range(1, len(self._offsets)):
            yield self.type(type_id)

    def _name_index(self) -> dict[tuple[str, int], int]:
        if self._by_name is None:
            index: dict[tuple[str, int], int] = {}
            strings, unpack = self._strings, struct.Struct(self.endian + "I").unpack_from
            types, kinds = self._types, self._kinds
            for type_id in range(1, len(self._offsets)):
                name_off = unpack(types, self._offsets[type_id])[0]
                if not name_off:
                    continue
                end = strings.find(b"\0", name_off)
                if end < 0 or name_off >= len(strings):
                    continue  # reported when the type itself is decoded
                name = strings[name_off:end].decode("utf-8", errors="replace")
                index.setdefault((name, kinds[type_id]), type_id)
            self._by_name = index
        return self._by_name

    def find_id(self, name: str, kind: str) -> int:
        """The id of the type ``name`` of ``kind`` ("FUNC", "STRUCT", ...), or 0 when absent."""
        number = _KIND_NUMBER.get(kind.upper())
        if number is None:
            raise ValueError(f"unknown BTF kind {kind!r}; expected one of {', '.join(KINDS[1:])}")
        return self._name_index().get((name, number), 0)

    def find(self, name: str, kind: str) -> BtfType | None:
        """The type ``name`` of ``kind``, or None."""
        type_id = self.find_id(name, kind)
        return self.type(type_id) if type_id else None

    def skip_modifiers(self, type_id: int) -> BtfType:
        """Follow typedefs and qualifiers (const, volatile, ...) to the underlying type."""
        for _ in range(_MAX_DEPTH):
            t = self.type(type_id)
            if self._kinds[type_id] not in _MODIFIERS:
                return t
            type_id = t.type_id
        raise ElfError(
            f"type {type_id}: typedef/qualifier chain too long or circular",
            self.section,
            self.offset_of(type_id),
        )

    def size_of(self, type_id: int, depth: int = 0) -> int:
        """The size in bytes of a type, as C's ``sizeof``."""
        if depth > _MAX_DEPTH:
            raise ElfError(
                f"type {type_id}: type chain too long or circular",
                self.section,
                self.offset_of(type_id),
            )
        t = self.skip_modifiers(type_id)
        if t.kind in ("INT", "STRUCT", "UNION", "ENUM", "ENUM64", "DATASEC", "FLOAT"):
            return t.size
        if t.kind == "PTR":
            return 8
        if t.kind == "ARRAY":
            return t.nelems * self.size_of(t.type_id, depth + 1)
        if t.kind == "VAR":
            return self.size_of(t.type_id, depth + 1)
        raise ElfError(f"type {type_id} ({t.kind}) has no size", self.section, self.offset_of(t.id))

    def type_name(self, type_id: int, depth: int = 0) -> str:
        """A readable C name for a type: ``u32``, ``struct key_t``, ``char[16]``, ``void *``."""
        if depth > _MAX_DEPTH:
            return "?"
        t = self.type(type_id)
        kind = t.kind
        if kind == "VOID":
            return "void"
        if kind in ("STRUCT", "UNION", "ENUM", "ENUM64"):
            keyword = {"STRUCT": "struct", "UNION": "union"}.get(kind, "enum")
            return f"{keyword} {t.name}" if t.name else f"{keyword} <anon>"
        if kind == "FWD":
            return f"{'union' if t.kind_flag else 'struct'} {t.name}"
        if kind == "PTR":
            return self.type_name(t.type_id, depth + 1) + " *"
        if kind == "ARRAY":
            return f"{self.type_name(t.type_id, depth + 1)}[{t.nelems}]"
        if kind in ("CONST", "VOLATILE", "RESTRICT"):
            return f"{kind.lower()} {self.type_name(t.type_id, depth + 1)}"
        if kind == "TYPE_TAG":
            return self.type_name(t.type_id, depth + 1)
        if kind == "FUNC_PROTO":
            return "func"
        return t.name or kind.lower()


def parse(data: bytes, section: str = ".BTF") -> Btf:
    """Parse raw BTF (a ``.BTF`` section or ``/sys/kernel/btf/vmlinux``)."""
    try:
        return Btf(data, section)
    except ElfError:
        raise
    except (struct.error, IndexError, ValueError) as err:
        raise ElfError(f"malformed BTF: {err}", section, 0) from None


def vmlinux() -> Btf:
    """The running kernel's BTF, parsed once per process (again only if the file changes);
    ``OSError`` when the kernel publishes none."""
    return _vmlinux(file_identity(VMLINUX_BTF))


@functools.lru_cache(maxsize=1)
def _vmlinux(identity: tuple[int, int, int, int]) -> Btf:
    return parse(read_vmlinux_btf(), "vmlinux BTF")


# -- .BTF.ext ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuncInfo:
    """``struct bpf_func_info``: the FUNC type of the function starting at instruction ``insn``."""

    insn: int
    type_id: int


@dataclass(frozen=True)
class LineInfo:
    """``struct bpf_line_info``: instruction ``insn`` comes from ``file``:``line``."""

    insn: int
    file: str
    line: int
    column: int
    source: str
    # (file_name_off, line_off, line_col) as in the object, for BPF_PROG_LOAD.
    raw: tuple[int, int, int] = field(default=(0, 0, 0), compare=False, repr=False)

    def shifted(self, by: int) -> LineInfo:
        return replace(self, insn=self.insn + by)


@dataclass(frozen=True)
class CoreRelocation:
    """``struct bpf_core_relo``: instruction ``insn`` holds a value about local type ``type_id``
    that must be recomputed against the kernel's BTF (CO-RE). ``access`` is the access string
    (``"0:1:2"``); ``kind`` is ``enum bpf_core_relo_kind``."""

    insn: int
    type_id: int
    access: str
    kind: int
    record: int = field(default=0, compare=False)  # where the record is in .BTF.ext

    def shifted(self, by: int) -> CoreRelocation:
        return replace(self, insn=self.insn + by)


@dataclass
class BtfExt:
    """``.BTF.ext``: function and line info and CO-RE relocations, by ELF section name, with
    instruction indexes."""

    func_info: dict[str, list[FuncInfo]]
    line_info: dict[str, list[LineInfo]]
    core_relocations: dict[str, list[CoreRelocation]] = field(default_factory=dict)


def parse_ext(data: bytes, btf: Btf, section: str = ".BTF.ext") -> BtfExt:
    """Parse ``.BTF.ext``; its strings live in ``btf``'s string section."""

    def fail(message: str, offset: int) -> ElfError:
        return ElfError(message, section, offset)

    if len(data) < 24:
        raise fail("shorter than the BTF.ext header", 0)
    e = btf.endian
    magic, version, _flags, hdr_len = struct.unpack_from(e + "HBBI", data, 0)
    if magic != MAGIC:
        raise fail(f"bad BTF.ext magic {magic:#06x}", 0)
    if version != 1:
        raise fail(f"unsupported BTF.ext version {version}", 2)
    if not 24 <= hdr_len <= len(data):
        raise fail(f"bad BTF.ext header length {hdr_len}", 4)
    func_off, func_len, line_off, line_len = struct.unpack_from(e + "4I", data, 8)

    def records(off: int, length: int, min_size: int) -> Iterator[tuple[str, int, int]]:
        # Yields (ELF section name, record offset in data, record size) for each record.
        start = hdr_len + off
        end = start + length
        if length == 0:
            return
        if end > len(data) or length < 4:
            raise fail("info block out of bounds", 8)
        rec_size = struct.unpack_from(e + "I", data, start)[0]
        if rec_size < min_size or rec_size > 1 << 16:
            raise fail(f"bad record size {rec_size}", start)
        pos = start + 4
        while pos < end:
            if pos + 8 > end:
                raise fail("truncated info header", pos)
            name_off, count = struct.unpack_from(e + "II", data, pos)
            name = btf.string(name_off)
            pos += 8
            if count * rec_size > end - pos:
                raise fail(f"{count} records overrun the block", pos)
            for i in range(count):
                yield name, pos + i * rec_size, rec_size
            pos += count * rec_size

    funcs: dict[str, list[FuncInfo]] = {}
    for name, at, _ in records(func_off, func_len, 8):
        insn_off, type_id = struct.unpack_from(e + "II", data, at)
        funcs.setdefault(name, []).append(FuncInfo(insn_off // 8, type_id))
    lines: dict[str, list[LineInfo]] = {}
    for name, at, _ in records(line_off, line_len, 16):
        insn_off, file_off, line_off_, line_col = struct.unpack_from(e + "4I", data, at)
        info = LineInfo(
            insn_off // 8,
            btf.string(file_off),
            line_col >> 10,
            line_col & 0x3FF,
            btf.string(line_off_).strip(),
            (file_off, line_off_, line_col),
        )
        lines.setdefault(name, []).append(info)
    cores: dict[str, list[CoreRelocation]] = {}
    if hdr_len >= 32:
        core_off, core_len = struct.unpack_from(e + "II", data, 24)
        for name, at, _ in records(core_off, core_len, 16):
            insn_off, type_id, access_off, kind = struct.unpack_from(e + "4I", data, at)
            relo = CoreRelocation(insn_off // 8, type_id, btf.string(access_off), kind, at)
            cores.setdefault(name, []).append(relo)
    return BtfExt(funcs, lines, cores)


def encode_func_info(records: list[FuncInfo], endian: str = "<") -> bytes:
    """``struct bpf_func_info`` array for BPF_PROG_LOAD (record size 8)."""
    return b"".join(struct.pack(endian + "II", r.insn, r.type_id) for r in records)


def encode_line_info(records: list[LineInfo], endian: str = "<") -> bytes:
    """``struct bpf_line_info`` array for BPF_PROG_LOAD (record size 16)."""
    return b"".join(struct.pack(endian + "4I", r.insn, *r.raw) for r in records)
