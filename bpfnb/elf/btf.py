"""A small BTF parser: ``.BTF`` type information (``include/uapi/linux/btf.h``).

:func:`parse` indexes the type section (where each type starts, and its kind) with numpy, and
decodes a type only when asked (:meth:`Btf.type`), so the 5 MB ``/sys/kernel/btf/vmlinux``
parses in under 20 ms; names are looked up through the string section, not a dictionary of
every type. A module's split BTF continues the ids and strings of its base (``base=``). Every
read is bounds-checked: malformed data raises :class:`bpfnb.errors.ElfError` naming the
section and the offset.
"""

from __future__ import annotations

import functools
import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from bpfnb.errors import ElfError
from bpfnb.sys.kernel_btf import (
    VMLINUX_BTF,
    file_identity,
    module_btf_path,
    read_btf_file,
    read_vmlinux_btf,
)

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
    "essential_name",
    "module",
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
# The same in 4-byte words by kind number (0-31), header included, for the vectorised walk.
# The same in 4-byte words, header included, as byte-translation tables from an info word's
# top byte (its low 5 bits are the kind), for the vectorised walk.
_HEADER_WORDS = bytes(3 + _FIXED_EXTRA.get(b & 0x1F, 0) // 4 for b in range(256))
_MEMBER_WORDS = bytes(_PER_MEMBER.get(b & 0x1F, 0) // 4 for b in range(256))
_JUMPS = 2  # the index walk jumps 2**2 records a step

# Kinds whose third word is a size; for the others it is a type id.
_SIZED = {1, 4, 5, 6, 15, 16, 19}
# Kinds that only qualify or rename another type.
_MODIFIERS = {8, 9, 10, 11, 18}

INT_SIGNED = 1
INT_CHAR = 2
INT_BOOL = 4

# Longest chain of typedefs/qualifiers/arrays followed before calling the data circular.
_MAX_DEPTH = 64


def essential_name(name: str) -> str:
    """A name without its CO-RE flavor: ``task_struct___v2`` names a flavor of ``task_struct``."""
    cut = name.find("___")
    return name[:cut] if cut > 0 else name


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
    int_offset: int = 0
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

    def __init__(
        self, data: bytes | mmap.mmap, section: str = ".BTF", base: Btf | None = None
    ) -> None:
        # A mapped file is kept as it is: the kernel's BTF is megabytes not worth copying.
        self.raw = data if isinstance(data, (bytes, mmap.mmap)) else bytes(data)
        self.section = section
        # Split BTF (a kernel module's) continues the ids and strings of its base (vmlinux).
        self.base = base
        self._first = len(base) if base is not None else 1
        self._base_strings: int = base.string_size if base is not None else 0
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
        self._types = memoryview(self.raw)[types_start : types_start + type_len]
        self._types_offset = types_start
        # By type id: where each type starts in the type section (-1: void, or in the base) and
        # its BTF_KIND_* number.
        self._offsets: np.ndarray = np.full(self._first, -1, np.int64)
        self._kinds: np.ndarray = base._kinds if base is not None else np.zeros(1, np.uint8)
        self._cache: dict[int, BtfType] = {}
        # Name lookups: each own type's name offset, and the ids found for each name.
        self._name_offsets: np.ndarray = np.zeros(0, np.uint32)
        self._named: dict[str, tuple[list[int], list[int]]] = {}
        self._index()

    # -- parsing ---------------------------------------------------------------------------------

    def _check(self, condition: bool, message: str, offset: int) -> None:
        if not condition:
            raise ElfError(message, self.section, offset)

    def _index(self) -> None:
        # A record's length follows from its own info word (kind and vlen), so where the next
        # record would start is computed for every 4-byte word at once. Following that chain
        # from word 0 finds the records; the chain is first squared twice (each step then jumps
        # 4 records), so the Python loop takes one step per 4 types and numpy fills in the
        # records between. The 5 MB vmlinux BTF indexes in about 13 ms.
        types = self._types
        count = len(types) // 4
        raw = np.frombuffer(types, np.uint8, count * 4)
        # The info word of a record at word p is word p + 1: its top byte holds the kind, its
        # low half the vlen. Strided views read them without decoding every word.
        if self.endian == "<":
            top, vlen = raw[7::4], np.frombuffer(types, "<u2", count * 2)[2::2]
        else:
            top, vlen = raw[4::4], np.frombuffer(types, ">u2", count * 2)[3::2]
        top_bytes = top.tobytes()
        header = np.frombuffer(top_bytes.translate(_HEADER_WORDS), np.uint8)
        member = np.frombuffer(top_bytes.translate(_MEMBER_WORDS), np.uint8)
        following = np.arange(count + 1, dtype=np.int32)
        following[: count - 1] += header
        following[: count - 1] += np.multiply(member, vlen, dtype=np.int32)
        if count:
            following[count - 1] += 3
        nexts = [np.minimum(following, count, out=following)]
        for _ in range(_JUMPS):
            nexts.append(nexts[-1][nexts[-1]])
        jump = nexts[-1].data.cast("B").cast("i")
        starts: list[int] = []
        append = starts.append
        pos = 0
        while pos < count:
            append(pos)
            pos = jump[pos]
        at = np.array(starts, dtype=np.int32)
        for level in reversed(nexts[:-1]):
            at = np.stack([at, level[at]], axis=1).ravel()
        at = at[: np.searchsorted(at, count)]  # the chain stays at ``count`` once past the end
        kinds = np.frombuffer(top_bytes, np.uint8)
        last = int(at[-1]) if len(at) else 0
        truncated = len(at) > 0 and last + 3 > count
        own_kinds = kinds[at[:-1] if truncated else at] & 0x1F
        bad = np.nonzero((own_kinds == 0) | (own_kinds >= len(KINDS)))[0]
        if len(bad):
            where = self._types_offset + int(at[bad[0]]) * 4
            raise ElfError(f"unknown type kind {int(own_kinds[bad[0]])}", self.section, where)
        if len(at) and not truncated:
            truncated = last + int(header[last]) + int(member[last]) * int(vlen[last]) != count
        if truncated or len(types) % 4:
            raise ElfError("truncated type", self.section, self._types_offset + last * 4)
        # Kept as arrays: an id's offset or kind is read one at a time, and only for the few
        # types a load looks at.
        self._offsets = np.concatenate([self._offsets, at.astype(np.int64) * 4])
        self._kinds = np.concatenate([self._kinds, own_kinds])
        self._name_offsets = np.frombuffer(types, self.endian + "u4", count)[at]

    def string(self, offset: int) -> str:
        """The string at ``offset`` of the string section."""
        if offset < self._base_strings:
            assert self.base is not None
            return self.base.string(offset)
        offset -= self._base_strings
        strings = self._strings
        if offset >= len(strings) or offset < 0:
            raise ElfError(f"string offset {offset} out of bounds", self.section, offset)
        end = strings.find(b"\0", offset)
        if end < 0:
            raise ElfError("unterminated string", self.section, self._strings_offset + offset)
        return strings[offset:end].decode("utf-8", errors="replace")

    @property
    def string_size(self) -> int:
        """Bytes of strings, a base's included: where a split BTF's own strings start."""
        return self._base_strings + len(self._strings)

    def __len__(self) -> int:
        """Number of type ids, counting ``void`` (id 0) and a base's types."""
        return len(self._offsets)

    def offset_of(self, type_id: int) -> int:
        """Where type ``type_id`` starts in the raw BTF (the type section's start for void or
        an unknown id)."""
        if self._first <= type_id < len(self._offsets):
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
        if type_id == 0:
            decoded = BtfType(0, "VOID", "void")
        elif type_id < self._first:
            assert self.base is not None
            return self.base.type(type_id)
        else:
            decoded = self._decode(type_id)
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
            return replace(
                t, encoding=(word >> 24) & 0xF, int_offset=(word >> 16) & 0xFF, bits=word & 0xFF
            )
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

    # -- queries ---------------------------------------------------------------------------------

    def types(self) -> Iterator[BtfType]:
        """Every type, in id order (without ``void``)."""
        for type_id in range(1, len(self._offsets)):
            yield self.type(type_id)

    def _strings_starting(self, text: bytes) -> dict[int, bytes]:
        # Every string that starts with ``text``, by its offset in this BTF (after a base's).
        found: dict[int, bytes] = {}
        strings, pattern = self._strings, b"\0" + text
        if self.base is not None and strings.startswith(text):
            # Only a split BTF's strings may begin with a name rather than "".
            end = strings.find(b"\0")
            found[self._base_strings] = strings[: end if end >= 0 else None]
        at = strings.find(pattern)
        while at >= 0:
            end = strings.find(b"\0", at + 1)
            found[at + 1 + self._base_strings] = strings[at + 1 : end if end >= 0 else None]
            at = strings.find(pattern, at + 1)
        if self.base is not None:
            found.update(self.base._strings_starting(text))
        return found

    def _lookup(self, name: str) -> tuple[list[int], list[int]]:
        # (ids named ``name``, ids whose essential name is ``name``): one scan of the string
        # section finds the name's offsets, one comparison of every type's name offset each.
        found = self._named.get(name)
        if found is None:
            exact: list[int] = []
            flavored: list[int] = []
            if name:
                for offset, text in self._strings_starting(name.encode()).items():
                    full = text.decode("utf-8", errors="replace")
                    if full == name or essential_name(full) == name:
                        ids = (np.nonzero(self._name_offsets == offset)[0] + self._first).tolist()
                        (exact if full == name else flavored).extend(ids)
            found = self._named[name] = (sorted(exact), sorted(exact + flavored))
        return found

    def ids_named(self, name: str) -> list[int]:
        """The ids of this BTF's own types called ``name``, of any kind, in id order.

        The name is looked up once in the string section and its offset compared with every
        type's name offset at once; the answer is kept for the next lookup.
        """
        return self._lookup(name)[0]

    def ids_with_essential_name(self, name: str) -> list[int]:
        """The ids of types called ``name`` or ``name___flavor`` (CO-RE's essential name)."""
        return self._lookup(name)[1]

    def find_ids(self, name: str, kind: str) -> list[int]:
        """Every id of a type ``name`` of ``kind`` ("FUNC", "STRUCT", ...)."""
        number = _KIND_NUMBER.get(kind.upper())
        if number is None:
            raise ValueError(f"unknown BTF kind {kind!r}; expected one of {', '.join(KINDS[1:])}")
        kinds = self._kinds
        return [type_id for type_id in self.ids_named(name) if kinds[type_id] == number]

    def find_id(self, name: str, kind: str) -> int:
        """The id of the type ``name`` of ``kind`` ("FUNC", "STRUCT", ...), or 0 when absent."""
        found = self.find_ids(name, kind)
        return found[0] if found else 0

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


def parse(data: bytes | mmap.mmap, section: str = ".BTF") -> Btf:
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


def module(name: str) -> Btf:
    """A loaded kernel module's BTF, split on the kernel's own, parsed once per process (again
    only if either file changes); ``OSError`` when the module has none."""
    path = module_btf_path(name)
    return _module(path, file_identity(path), vmlinux())


@functools.lru_cache(maxsize=64)
def _module(path: str, identity: tuple[int, int, int, int], base: Btf) -> Btf:
    data = read_btf_file(path)
    section = f"{os.path.basename(path)} BTF"
    try:
        return Btf(data, section, base=base)
    except (struct.error, IndexError, ValueError) as err:
        raise ElfError(f"malformed BTF: {err}", section, 0) from None


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
