"""Read a clang-built BPF object into an :class:`ObjectSpec`: pure data, no kernel.

pyelftools parses the ELF header and section headers; symbols and relocations are fixed-size
records read here with ``struct`` after their sizes are checked. Every failure of a malformed
object is an :class:`ElfError` that names the section and offset.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import warnings
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from bpfnb.elf import btf as btf_module
from bpfnb.elf import kconfig as kconfig_module
from bpfnb.elf.btf import Btf, BtfExt, BtfType, CoreRelocation, FuncInfo, LineInfo
from bpfnb.elf.relocate import Function, Link, Symbol, link
from bpfnb.elf.sections import UNKNOWN_SECTION, lookup
from bpfnb.elf.spec import (
    MAX_DATA_SIZE,
    Extern,
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    SectionInfo,
    Variable,
)
from bpfnb.errors import ElfError
from bpfnb.link import BPF_F_LINK
from bpfnb.sys.constants import MapType

__all__ = ["read"]

EM_BPF, EM_NONE = 247, 0
SHF_EXECINSTR = 0x4
SHF_COMPRESSED = 0x800
STT_OBJECT, STT_FUNC, STT_SECTION = 1, 2, 3
STB_LOCAL, STB_WEAK = 0, 2
STV_INTERNAL, STV_HIDDEN = 1, 2
BTF_VAR_GLOBAL_ALLOCATED = 1
BTF_EXTERN = 2  # the linkage of an extern VAR or FUNC
KSYMS = ".ksyms"
STRUCT_OPS, STRUCT_OPS_LINK = ".struct_ops", ".struct_ops.link"
STATIC_MAPS = (
    "static maps are not supported, as libbpf does not support them: declare the map without "
    "'static'"
)
SHN_UNDEF, SHN_LORESERVE = 0, 0xFF00

R_BPF_64_64, R_BPF_64_ABS64, R_BPF_64_ABS32, R_BPF_64_NODYLD32, R_BPF_64_32 = 1, 2, 3, 4, 10

GOBPF_MAP_DEF_SIZE = 280
GOBPF_LAYOUT = (
    "struct bpf_map_def { unsigned int type, key_size, value_size, max_entries, map_flags, "
    "pinning; char namespace[256]; } (280 bytes)"
)
_DATA_PREFIXES = (".rodata", ".data", ".bss")
_IGNORED_PREFIXES = (".debug", ".rel.debug", ".llvm", ".note", ".comment", ".eh_frame")


def read(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> ObjectSpec:
    """Read a BPF ELF object (a path, or its bytes) into an :class:`ObjectSpec`.

    Pure data: works on any machine, without privileges. A malformed object raises
    :class:`bpfnb.errors.ElfError` naming the section and offset.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, path = bytes(source), "<bytes>"
    else:
        path = os.fspath(source)
        with open(path, "rb") as f:
            data = f.read()
    return _Reader(data, path).read()


@dataclass
class _Section:
    index: int
    name: str
    type: str
    flags: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int
    data: bytes

    def contents(self) -> bytes:
        """The section's bytes; an error for a section that should hold some but has none."""
        if len(self.data) != self.size:
            raise ElfError(f"holds no data ({self.type}) where data is needed", self.name, 0)
        return self.data

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR) and self.type == "SHT_PROGBITS"


def _is_data_section(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in _DATA_PREFIXES)


class _Reader:
    def __init__(self, data: bytes, path: str) -> None:
        self.data = data
        self.path = path
        self.sections: list[_Section] = []
        self.symbols: list[Symbol] = []
        self.by_section: dict[int, list[Symbol]] | None = None  # named symbols, by value
        self.links: dict[int, dict[int, Link]] = {}  # section → insn/byte offset → relocation
        self.roles: dict[int, str] = {}
        self.btf: Btf | None = None
        self.ext: BtfExt | None = None
        self.maps: dict[str, MapSpec] = {}
        self.map_at: dict[tuple[int, int], str] = {}  # (section, offset) → map name
        self.variables: dict[str, Variable] = {}
        self.kconfig: dict[str, tuple[int, int, int]] = {}  # extern → (offset, size, type id)
        self.externs: dict[str, Extern] = {}  # __ksym externs
        self.machine_warning = ""  # set when an old object's e_machine is 0

    # -- ELF structure ---------------------------------------------------------------------------

    def read(self) -> ObjectSpec:
        self._elf_header()
        self._section_headers()
        self._check_machine()
        self._symbols()
        self._btf()
        self._externs()
        license_ = self._license()
        version = self._version()
        self._relocations()
        self._legacy_maps()
        self._btf_maps()
        self._data_maps()
        self._struct_ops_maps()
        self._kconfig_map()
        programs = self._programs(license_, version)
        for section in self.sections:
            self.roles.setdefault(section.index, self._default_role(section))
        infos = [
            SectionInfo(s.index, s.name, s.type.replace("SHT_", ""), s.size, self.roles[s.index])
            for s in self.sections
        ]
        return ObjectSpec(
            path=self.path,
            programs=programs,
            maps=self.maps,
            license=license_,
            kernel_version=version,
            btf=self.btf,
            variables=self.variables,
            sections=infos,
            byteorder=sys.byteorder,
            section_sizes=self._section_sizes(),
            symbol_offsets={
                **{
                    sym.name: sym.value
                    for sym in self.symbols
                    if sym.type == STT_OBJECT and 0 < sym.section < len(self.sections)
                },
                **{name: offset for name, (offset, _, _) in self.kconfig.items()},
            },
            kconfig_weak={
                sym.name: sym.bind == STB_WEAK
                for sym in self.symbols
                if sym.section == SHN_UNDEF and sym.name in self.kconfig
            },
            externs=self.externs,
            hidden_functions=self._hidden_functions(),
        )

    def _hidden_functions(self) -> list[str]:
        # libbpf marks a global subprogram static in BTF when its visibility is hidden or
        # internal (__hidden, as in usdt.bpf.h): the verifier then checks it in each caller's
        # context instead of on its own, where it knows nothing of its arguments.
        text = {s.index for s in self.sections if s.name == ".text"}
        return [
            sym.name
            for sym in self.symbols
            if sym.section in text
            and sym.type == STT_FUNC
            and sym.bind != STB_LOCAL
            and sym.visibility in (STV_INTERNAL, STV_HIDDEN)
        ]

    def _externs(self) -> None:
        # __ksym externs: kfuncs and kernel variables, described in the .ksyms DATASEC.
        btf = self.btf
        undefined = {
            sym.name: sym
            for sym in self.symbols
            if sym.section == SHN_UNDEF and sym.name and sym.bind != STB_LOCAL
        }
        if btf is None or not undefined:
            return
        datasec = btf.find(KSYMS, "DATASEC")
        for entry in datasec.members if datasec is not None else ():
            t = btf.type(entry.type_id)
            sym = undefined.get(t.name)
            if t.kind not in ("VAR", "FUNC") or sym is None:
                continue
            if t.linkage != BTF_EXTERN:
                raise ElfError(
                    f"__ksym {t.name!r} is defined here: a __ksym must be an extern",
                    ".BTF",
                    btf.offset_of(t.id),
                )
            type_id = btf.skip_modifiers(t.type_id).id
            weak = sym.bind == STB_WEAK
            self.externs[t.name] = Extern(t.name, t.kind == "FUNC", weak, t.id, type_id)

    def _section_sizes(self) -> dict[str, int]:
        sizes = {s.name: s.size for s in self.sections if not s.executable}
        if kconfig_module.KCONFIG in self.maps:
            sizes[kconfig_module.KCONFIG] = self.maps[kconfig_module.KCONFIG].value_size
        return sizes

    def _kconfig_map(self) -> None:
        # __kconfig externs live in a read-only map that the loader fills from the kernel.
        if not self.kconfig:
            return
        end = max(offset + size for offset, size, _ in self.kconfig.values())
        spec = MapSpec(
            kconfig_module.KCONFIG, MapType.ARRAY, 4, max(end, 1), 1,
            section=kconfig_module.KCONFIG, layout="data", readonly=True, btf=self.btf,
        )  # fmt: skip
        self._add_map(spec, -1, 0)
        for name, (offset, size, type_id) in self.kconfig.items():
            assert self.btf is not None
            t = self.btf.skip_modifiers(type_id)
            integer = t.kind in ("INT", "ENUM", "ENUM64")
            if not (integer and size in (1, 2, 4, 8)) and t.kind != "ARRAY":
                raise ElfError(
                    f"__kconfig extern {name!r} must be an integer, bool, char, enum or char "
                    f"array, not {self.btf.type_name(type_id)}",
                    ".BTF",
                    self.btf.offset_of(type_id),
                )
            signed = t.kind == "INT" and t.signed
            var = Variable(name, kconfig_module.KCONFIG, offset, size, type_id, signed, integer)
            self.variables[name] = var
            spec.variables.append(var)

    def _elf_header(self) -> None:
        data = self.data
        if len(data) < 64 or data[:4] != b"\x7fELF":
            raise ElfError("not an ELF file", "ELF header", 0)
        if data[4] != 2:
            raise ElfError("not a 64-bit ELF object (BPF objects are ELF64)", "ELF header", 4)
        if data[5] != (1 if sys.byteorder == "little" else 2):
            raise ElfError(
                f"byte order differs from this {sys.byteorder}-endian machine", "ELF header", 5
            )
        self.endian = "<" if sys.byteorder == "little" else ">"
        e_type, e_machine = struct.unpack_from(self.endian + "HH", data, 16)
        self.machine = e_machine
        if e_machine not in (EM_BPF, EM_NONE):
            raise ElfError(
                f"not a BPF object (e_machine {e_machine}, expected EM_BPF=247)", "ELF header", 18
            )
        if e_type != 1:
            raise ElfError(
                f"not a relocatable object (e_type {e_type}; expected ET_REL)", "ELF header", 16
            )
        e_shoff = struct.unpack_from(self.endian + "Q", data, 40)[0]
        e_shentsize, e_shnum, e_shstrndx = struct.unpack_from(self.endian + "HHH", data, 58)
        if e_shentsize != 64:
            raise ElfError(f"section header size {e_shentsize}, expected 64", "ELF header", 58)
        if e_shnum == 0 or e_shoff == 0:
            raise ElfError("no section headers (or extended numbering)", "ELF header", 60)
        if e_shoff + e_shnum * 64 > len(data):
            raise ElfError(
                f"{e_shnum} section headers run past the end of the file", "ELF header", 40
            )
        if e_shstrndx >= e_shnum:
            raise ElfError(f"section name table index {e_shstrndx} out of range", "ELF header", 62)
        self.shnum, self.shoff = e_shnum, e_shoff
        try:
            from elftools.elf.elffile import ELFFile

            self.elf = ELFFile(io.BytesIO(data))
        except Exception as err:  # pyelftools raises many kinds; all mean "malformed"
            raise ElfError(f"unreadable ELF header: {err}", "ELF header", 0) from None

    def _check_machine(self) -> None:
        # Objects from LLVM before 3.9 (gobpf's prebuilt test objects) say e_machine 0
        # (EM_NONE). They are read as BPF when a code section has a BPF program's name.
        if self.machine == EM_BPF:
            return
        named = [s.name for s in self.sections if s.executable and lookup(s.name.removeprefix("?"))]
        if not named:
            raise ElfError(
                "not a BPF object (e_machine 0, and no code section has a BPF program's name)",
                "ELF header",
                18,
            )
        warnings.warn(
            f"{self.path}: e_machine is 0, not EM_BPF (247), as old LLVM wrote BPF objects; read "
            f"as BPF because of its program sections ({', '.join(named[:3])})",
            stacklevel=4,
        )

    def _section_headers(self) -> None:
        for index in range(self.shnum):
            at = self.shoff + index * 64
            try:
                section = self.elf.get_section(index)
                header, name = section.header, section.name
            except Exception as err:  # pyelftools: bad name offsets, bad links, short reads
                raise ElfError(
                    f"unreadable section header {index} (at file offset {at:#x}): {err}",
                    f"#{index}",
                    0,
                ) from None
            self._add_section(index, name, header, at)

    def _add_section(self, index: int, name: str, h: Any, at: int) -> None:
        # ``h`` is pyelftools' parsed header (a construct Container).
        sh_type = h["sh_type"]
        sh_type = sh_type if isinstance(sh_type, str) else f"SHT_{sh_type:#x}"
        flags, offset, size = h["sh_flags"], h["sh_offset"], h["sh_size"]
        if not name and sh_type != "SHT_NULL":
            name = f"#{index}"  # an unnamed section (a corrupt name offset): errors need a name
        label = name or f"#{index}"
        if flags & SHF_COMPRESSED:
            raise ElfError("compressed sections are not supported", label, 0)
        if sh_type in ("SHT_NOBITS", "SHT_NULL"):
            data = b""
        else:
            if offset + size > len(self.data):
                raise ElfError(
                    f"{size} bytes at file offset {offset:#x} run past the end of the file",
                    label,
                    0,
                )
            data = self.data[offset : offset + size]
        link_, info, entsize = h["sh_link"], h["sh_info"], h["sh_entsize"]
        self.sections.append(
            _Section(index, name, sh_type, flags, offset, size, link_, info, entsize, data)
        )

    def _section(self, index: int, user: str, offset: int = 0) -> _Section:
        if not 0 <= index < len(self.sections):
            raise ElfError(f"refers to section {index}, which does not exist", user, offset)
        return self.sections[index]

    def _string(self, table: _Section, offset: int, user: str) -> str:
        data = table.data
        end = data.find(b"\0", offset)
        if offset >= len(data) or end < 0:
            raise ElfError(f"string offset {offset} outside {table.name!r}", user, offset)
        return data[offset:end].decode("utf-8", errors="replace")

    def _symbols(self) -> None:
        tables = [s for s in self.sections if s.type == "SHT_SYMTAB"]
        if len(tables) != 1:
            raise ElfError(f"expected one symbol table, found {len(tables)}", ".symtab", 0)
        symtab = tables[0]
        self.roles[symtab.index] = "symbols"
        if symtab.entsize != 24 or symtab.size % 24:
            raise ElfError(f"symbol size {symtab.entsize}, expected 24", symtab.name, 0)
        strtab = self._section(symtab.link, symtab.name, 0)
        if strtab.type != "SHT_STRTAB":
            raise ElfError("symbol names are not in a string table", symtab.name, 0)
        self.roles[strtab.index] = "strings"
        fmt = self.endian + "IBBHQQ"
        for i, (name_off, info, other, shndx, value, size) in enumerate(
            struct.iter_unpack(fmt, symtab.contents())
        ):
            name = self._string(strtab, name_off, symtab.name) if name_off else ""
            if shndx != SHN_UNDEF and shndx < SHN_LORESERVE and shndx >= len(self.sections):
                raise ElfError(
                    f"symbol {name!r} in section {shndx}, which does not exist", symtab.name, i * 24
                )
            if not name and info & 0xF == STT_SECTION and shndx < len(self.sections):
                name = self.sections[shndx].name
            self.symbols.append(
                Symbol(i, name, info & 0xF, info >> 4, shndx, value, size, other & 3)
            )

    def _symbols_in(self, section: int, *types: int) -> list[Symbol]:
        if self.by_section is None:
            self.by_section = {}
            for sym in sorted(self.symbols, key=lambda s: s.value):
                if sym.name:
                    self.by_section.setdefault(sym.section, []).append(sym)
        return [s for s in self.by_section.get(section, ()) if s.type in types]

    def _btf(self) -> None:
        for section in self.sections:
            if section.name == ".BTF":
                self.btf = btf_module.parse(section.contents(), ".BTF")
                self.roles[section.index] = "BTF"
        if self.btf is not None:
            self.kconfig = {n: (o, size, t) for n, o, size, t in kconfig_module.layout(self.btf)}
        for section in self.sections:
            if section.name == ".BTF.ext":
                self.roles[section.index] = "BTF.ext"
                if self.btf is not None:
                    self.ext = btf_module.parse_ext(section.contents(), self.btf)

    def _license(self) -> str:
        for section in self.sections:
            if section.name == "license":
                self.roles[section.index] = "license"
                return section.contents().split(b"\0", 1)[0].decode("utf-8", errors="replace")
        return ""

    def _version(self) -> int:
        for section in self.sections:
            if section.name == "version":
                self.roles[section.index] = "version"
                if len(section.contents()) != 4:
                    raise ElfError(
                        f"kernel version is {len(section.data)} bytes, expected 4", "version", 0
                    )
                return int(struct.unpack(self.endian + "I", section.data)[0])
        return 0

    def _relocations(self) -> None:
        for rel in self.sections:
            if rel.type == "SHT_RELA":
                raise ElfError("RELA relocations are not used by BPF objects", rel.name, 0)
            if rel.type != "SHT_REL":
                continue
            target = self._section(rel.info, rel.name, 0)
            if target.name.startswith(_IGNORED_PREFIXES) or target.name in (".BTF", ".BTF.ext"):
                # Relocations of debug info and BTF matter to linkers and debuggers only.
                self.roles[rel.index] = "debug info (ignored)"
                continue
            self.roles[rel.index] = "relocations"
            if rel.entsize != 16 or rel.size % 16:
                raise ElfError(f"relocation size {rel.entsize}, expected 16", rel.name, 0)
            links = self.links.setdefault(target.index, {})
            for i, (offset, info) in enumerate(struct.iter_unpack(self.endian + "QQ", rel.data)):
                at = 16 * i
                sym_index, kind = info >> 32, info & 0xFFFFFFFF
                if sym_index >= len(self.symbols):
                    raise ElfError(
                        f"relocation names symbol {sym_index}, which does not exist", rel.name, at
                    )
                symbol = self.symbols[sym_index]
                if kind not in (
                    R_BPF_64_64,
                    R_BPF_64_ABS64,
                    R_BPF_64_ABS32,
                    R_BPF_64_NODYLD32,
                    R_BPF_64_32,
                ):
                    raise ElfError(f"unknown relocation type {kind}", rel.name, at)
                if offset % 8 or offset + 8 > target.size:
                    raise ElfError(
                        f"relocation offset {offset:#x} outside {target.name!r}", rel.name, at
                    )
                # A reference through a section symbol (static data, a static map) carries its
                # offset into that section in the ld_imm64 instruction's immediate.
                addend = 0
                if target.executable and kind == R_BPF_64_64:
                    addend = struct.unpack_from(self.endian + "i", target.data, offset + 4)[0]
                links[offset] = self._resolve(symbol, rel.name, at, addend)

    def _resolve(self, symbol: Symbol, user: str, at: int, addend: int = 0) -> Link:
        # What a relocation's symbol is: a map, global data, code, or something unsupported.
        if symbol.section == SHN_UNDEF:
            if symbol.name in self.kconfig:
                offset = self.kconfig[symbol.name][0]
                return Link(symbol, "data", kconfig_module.KCONFIG, 0, offset)
            return Link(symbol, "extern", symbol.name)
        if symbol.section >= SHN_LORESERVE:
            raise ElfError(f"symbol {symbol.name!r} is not in a section", user, at)
        section = self.sections[symbol.section]
        if section.executable:
            return Link(symbol, "code", section.name, section.index, symbol.value)
        if section.name == "maps" or section.name.startswith("maps/") or section.name == ".maps":
            return Link(symbol, "map", "", section.index, symbol.value + addend)
        if _is_data_section(section.name):
            return Link(symbol, "data", section.name, section.index, symbol.value)
        raise ElfError(
            f"reference to {symbol.name!r} in section {section.name!r}, which is neither code, "
            "maps nor global data",
            user,
            at,
        )

    # -- maps ------------------------------------------------------------------------------------

    def _add_map(self, spec: MapSpec, section: int, offset: int) -> None:
        if spec.name in self.maps:
            raise ElfError(f"map {spec.name!r} is defined twice", spec.section, offset)
        spec.offset = offset
        self.maps[spec.name] = spec
        self.map_at[(section, offset)] = spec.name

    def _legacy_maps(self) -> None:
        for section in self.sections:
            if section.name.startswith("maps/"):
                self.roles[section.index] = "maps (gobpf bpf_map_def)"
                if section.size != GOBPF_MAP_DEF_SIZE:
                    raise ElfError(
                        f"map definition is {section.size} bytes; expected one {GOBPF_LAYOUT} per "
                        "'maps/NAME' section",
                        section.name,
                        0,
                    )
                words = struct.unpack_from(self.endian + "6I", section.contents(), 0)
                namespace = section.data[24:280].split(b"\0", 1)[0].decode("utf-8", "replace")
                name = section.name[len("maps/") :]
                syms = self._symbols_in(section.index, STT_OBJECT)
                if any(sym.bind == STB_LOCAL for sym in syms):
                    raise ElfError(f"map {name!r}: {STATIC_MAPS}", section.name, 0)
                if len(syms) == 1 and syms[0].value == 0:
                    name = syms[0].name
                spec = MapSpec(
                    name, words[0], words[1], words[2], words[3], words[4], section.name,
                    pinning=words[5], namespace=namespace, layout="gobpf",
                )  # fmt: skip
                self._add_map(spec, section.index, 0)
            elif section.name == "maps":
                self.roles[section.index] = "maps (bpf_map_def)"
                self._samples_maps(section)

    def _samples_maps(self, section: _Section) -> None:
        syms = [s for s in self._symbols_in(section.index, STT_OBJECT, 0) if s.type != STT_SECTION]
        if not syms:
            if section.size:
                raise ElfError("map definitions without symbols", section.name, 0)
            return
        size = section.size // len(syms)
        if section.size % len(syms) or size < 20:
            raise ElfError(
                f"{section.size} bytes do not divide into {len(syms)} map definitions of at least "
                "20 bytes (struct bpf_map_def: type, key_size, value_size, max_entries, map_flags)",
                section.name,
                0,
            )
        inner_of: dict[str, int] = {}
        specs: list[MapSpec] = []
        for i, sym in enumerate(syms):
            if sym.bind == STB_LOCAL:
                raise ElfError(f"map {sym.name!r}: {STATIC_MAPS}", section.name, sym.value)
            if sym.value != i * size:
                raise ElfError(
                    f"map {sym.name!r} is not at a multiple of {size}", section.name, sym.value
                )
            words = struct.unpack_from(self.endian + "5I", section.contents(), sym.value)
            numa = 0
            map_type, key_size, value_size, max_entries, flags = words
            if size >= 28:
                inner, numa = struct.unpack_from(self.endian + "II", section.data, sym.value + 20)
                if map_type in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
                    inner_of[sym.name] = inner
            spec = MapSpec(
                sym.name, map_type, key_size, value_size, max_entries, flags,
                section="maps", layout="samples", numa_node=numa,
            )  # fmt: skip
            self._add_map(spec, section.index, sym.value)
            specs.append(spec)
        # The 7-field layout names a map-in-map's inner map by its index in the section; that
        # map is the template the kernel checks inner maps against.
        for name, index in inner_of.items():
            if index >= len(specs) or specs[index].name == name:
                raise ElfError(f"map {name!r}: inner map index {index} is invalid", "maps", 0)
            self.maps[name].inner = specs[index]

    def _btf_maps(self) -> None:
        section = next((s for s in self.sections if s.name == ".maps"), None)
        if section is None:
            return
        self.roles[section.index] = "maps (BTF)"
        if self.btf is None:
            raise ElfError(
                "BTF-defined maps need the object's BTF: compile with clang -g", ".maps", 0
            )
        datasec = self.btf.find(".maps", "DATASEC")
        if datasec is None:
            raise ElfError("no BTF DATASEC describes the maps", ".maps", 0)
        symbols = {s.name: s for s in self._symbols_in(section.index, STT_OBJECT)}
        self._check_layout(sorted(symbols.values(), key=lambda s: s.value), ".maps")
        links = self.links.get(section.index, {})
        for entry in datasec.members:
            var = self.btf.type(entry.type_id)
            if var.kind != "VAR":
                raise ElfError(
                    f"DATASEC entry {entry.type_id} is a {var.kind}, not a VAR",
                    ".BTF",
                    self.btf.offset_of(datasec.id),
                )
            sym = symbols.get(var.name)
            if sym is None:
                raise ElfError(
                    f"map {var.name!r} has no symbol", ".BTF", self.btf.offset_of(var.id)
                )
            if var.linkage != BTF_VAR_GLOBAL_ALLOCATED or sym.bind == STB_LOCAL:
                raise ElfError(f"map {var.name!r}: {STATIC_MAPS}", ".maps", sym.value)
            spec = self._btf_map_def(var.name, var.type_id, 0, sym.value)
            # Initial contents of a map-in-map: relocations on the "values" array.
            values_offset = self._member_offset(var.type_id, "values")
            if values_offset is not None:
                for offset, reloc in links.items():
                    slot, rem = divmod(offset - sym.value - values_offset, 8)
                    if (
                        offset >= sym.value + values_offset
                        and not rem
                        and offset < sym.value + sym.size
                    ):
                        spec.initial_slots[slot] = reloc.symbol.name
            self._add_map(spec, section.index, sym.value)

    def _check_layout(self, syms: list[Symbol], section: str) -> None:
        # Map definitions (sorted by offset) must each start 8-byte aligned and not overlap:
        # a reference to one must never read another's bytes.
        for sym, after in zip(syms, [*syms[1:], None]):
            if sym.value % 8:
                raise ElfError(f"map {sym.name!r} is not 8-byte aligned", section, sym.value)
            if after is not None and after.value < sym.value + sym.size:
                raise ElfError(
                    f"map definitions {sym.name!r} and {after.name!r} overlap", section, after.value
                )

    def _member_offset(self, type_id: int, name: str) -> int | None:
        assert self.btf is not None
        t = self.btf.skip_modifiers(type_id)
        for m in t.members:
            if m.name == name:
                return m.offset // 8
        return None

    def _btf_map_def(self, name: str, type_id: int, depth: int, offset: int) -> MapSpec:
        btf = self.btf
        assert btf is not None
        where = (".maps", offset)
        t = btf.skip_modifiers(type_id)
        if t.kind != "STRUCT":
            raise ElfError(f"map {name!r} is a {t.kind}, not a struct", *where)
        spec = MapSpec(name, 0, 0, 0, 0, section=".maps", layout="btf", btf=btf)
        for member in t.members:
            target = btf.skip_modifiers(member.type_id)
            if member.name in ("type", "max_entries", "map_flags", "numa_node", "pinning",
                               "key_size", "value_size", "map_extra"):  # fmt: skip
                value = self._btf_uint(name, member.name, target, offset)
                if member.name == "type":
                    spec.type = value
                elif member.name == "map_flags":
                    spec.flags = value
                else:
                    setattr(spec, member.name, value)
            elif member.name in ("key", "value"):
                if target.kind != "PTR":
                    raise ElfError(
                        f"map {name!r}: {member.name} must be a pointer (__type)", *where
                    )
                size = btf.size_of(target.type_id)
                setattr(spec, f"{member.name}_size", size)
                setattr(spec, f"{member.name}_type_id", target.type_id)
            elif member.name == "values":
                if depth > 0:
                    raise ElfError(f"map {name!r}: maps nest only one level deep", *where)
                if target.kind != "ARRAY":
                    raise ElfError(f"map {name!r}: values must be an array (__array)", *where)
                pointer = btf.skip_modifiers(target.type_id)
                if pointer.kind != "PTR":
                    raise ElfError(f"map {name!r}: values must hold pointers", *where)
                inner_type = btf.skip_modifiers(pointer.type_id)
                if inner_type.kind == "STRUCT" and spec.type in (
                    MapType.ARRAY_OF_MAPS,
                    MapType.HASH_OF_MAPS,
                    0,
                ):
                    inner_name = f"{name}.inner"
                    spec.inner = self._btf_map_def(inner_name, pointer.type_id, depth + 1, offset)
                # A map-in-map holds map fds, a program array program fds: 4 bytes each.
                spec.value_size = 4
            else:
                raise ElfError(f"map {name!r}: unknown field {member.name!r}", *where)
        if spec.type in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS) and spec.inner is None:
            raise ElfError(f"map-in-map {name!r} needs an inner map (__array(values, ...))", *where)
        return spec

    def _btf_uint(self, name: str, field: str, target: object, offset: int) -> int:
        # __uint(field, N) is "int (*field)[N]": a pointer to an array of N elements.
        assert self.btf is not None
        t = target
        if getattr(t, "kind", "") == "PTR":
            array = self.btf.skip_modifiers(t.type_id)  # type: ignore[attr-defined]
            if array.kind == "ARRAY":
                return array.nelems
        raise ElfError(f"map {name!r}: {field} must be declared with __uint()", ".maps", offset)

    def _data_maps(self) -> None:
        for section in self.sections:
            if not _is_data_section(section.name) or section.executable:
                continue
            if section.type not in ("SHT_PROGBITS", "SHT_NOBITS"):
                continue
            self.roles[section.index] = "global data"
            if section.size > MAX_DATA_SIZE:
                raise ElfError(
                    f"{section.size} bytes of global data exceed {MAX_DATA_SIZE}", section.name, 0
                )
            if section.size == 0:
                continue
            readonly = section.name.startswith(".rodata")
            spec = MapSpec(
                section.name, MapType.ARRAY, 4, section.size, 1, section=section.name,
                layout="data", readonly=readonly, btf=self.btf,
                data=section.data if section.type == "SHT_PROGBITS" else None,
            )  # fmt: skip
            self._add_map(spec, section.index, 0)
            self._variables(section)

    def _struct_ops_maps(self) -> None:
        # SEC(".struct_ops") / SEC(".struct_ops.link") variables: one struct_ops map each, its
        # function pointers relocated against the programs that implement them.
        for section in self.sections:
            name = section.name.removeprefix("?")
            if name not in (STRUCT_OPS, STRUCT_OPS_LINK) or section.executable:
                continue
            self.roles[section.index] = "struct_ops maps"
            btf = self.btf
            if btf is None:
                raise ElfError("struct_ops maps need the object's BTF: compile with clang -g", name)
            datasec = btf.find(section.name, "DATASEC")
            if datasec is None:
                raise ElfError("no BTF DATASEC describes the struct_ops maps", section.name, 0)
            symbols = {s.name: s for s in self._symbols_in(section.index, STT_OBJECT)}
            links = self.links.get(section.index, {})
            for entry in datasec.members:
                var = btf.type(entry.type_id)
                sym = symbols.get(var.name)
                t = btf.skip_modifiers(var.type_id)
                if var.kind != "VAR" or sym is None:
                    raise ElfError(f"struct_ops {var.name!r} has no symbol", section.name, 0)
                if t.kind != "STRUCT" or not t.name:
                    raise ElfError(
                        f"struct_ops {var.name!r} is not a named struct", section.name, sym.value
                    )
                if sym.value + t.size > section.size:
                    raise ElfError(
                        f"struct_ops {var.name!r} runs past its section", section.name, sym.value
                    )
                spec = MapSpec(
                    var.name, MapType.STRUCT_OPS, 4, t.size, 1,
                    BPF_F_LINK if name == STRUCT_OPS_LINK else 0, section.name,
                    layout="struct_ops", btf=btf, value_type_id=t.id,
                    data=section.contents()[sym.value : sym.value + t.size],
                )  # fmt: skip
                for offset, reloc in links.items():
                    if sym.value <= offset < sym.value + t.size:
                        member = self._struct_ops_member(t, offset - sym.value, var.name)
                        spec.struct_ops[member] = self._function_at(reloc, section, offset)
                self._add_map(spec, section.index, sym.value)

    def _struct_ops_member(self, t: BtfType, offset: int, name: str) -> int:
        # The index of the function-pointer member at byte ``offset``.
        assert self.btf is not None
        for index, member in enumerate(t.members):
            if member.offset == offset * 8:
                target = self.btf.skip_modifiers(member.type_id)
                if target.kind == "PTR" and self.btf.kind_of(target.type_id) == "FUNC_PROTO":
                    return index
                raise ElfError(
                    f"struct_ops {name!r}: member {member.name!r} is not a function pointer",
                    STRUCT_OPS,
                    offset,
                )
        raise ElfError(f"struct_ops {name!r}: no member at offset {offset}", STRUCT_OPS, offset)

    def _function_at(self, reloc: Link, section: _Section, offset: int) -> str:
        # The program a relocation points at: its function symbol, or the function that starts
        # where a section symbol (plus the addend in the data) points.
        if reloc.kind != "code":
            raise ElfError(
                f"struct_ops slot refers to {reloc.symbol.name!r}, not a program",
                section.name,
                offset,
            )
        if reloc.symbol.type == STT_FUNC:
            return reloc.symbol.name
        addend = struct.unpack_from(self.endian + "q", section.data, offset)[0]
        for sym in self._symbols_in(reloc.section, STT_FUNC):
            if sym.value == reloc.offset + addend:
                return sym.name
        raise ElfError("struct_ops slot points at no function", section.name, offset)

    def _variables(self, section: _Section) -> None:
        types: dict[str, int] = {}
        if self.btf is not None:
            datasec = self.btf.find(section.name, "DATASEC")
            for entry in datasec.members if datasec else ():
                var_type = self.btf.type(entry.type_id)
                if var_type.kind == "VAR":
                    types[var_type.name] = var_type.type_id
        for sym in self._symbols_in(section.index, STT_OBJECT):
            if sym.value + sym.size > section.size:
                raise ElfError(
                    f"variable {sym.name!r} runs past its section", section.name, sym.value
                )
            type_id, signed, integer = types.get(sym.name, 0), False, True
            if type_id and self.btf is not None:
                t = self.btf.skip_modifiers(type_id)
                integer = t.kind in ("INT", "ENUM", "ENUM64", "PTR")
                signed = (t.kind == "INT" and t.signed) or (
                    t.kind.startswith("ENUM") and t.kind_flag
                )
            var = Variable(sym.name, section.name, sym.value, sym.size, type_id, signed, integer)
            self.variables[sym.name] = var
            self.maps[section.name].variables.append(var)

    # -- programs --------------------------------------------------------------------------------

    def _functions(self) -> dict[int, list[Function]]:
        by_section: dict[int, list[Function]] = {}
        for section in self.sections:
            if not section.executable or section.size == 0:
                continue
            if section.size % 8:
                raise ElfError(f"code size {section.size} is not a multiple of 8", section.name, 0)
            if not section.name:
                raise ElfError("code in a section without a name", f"#{section.index}", 0)
            total = section.size // 8
            syms = self._symbols_in(section.index, STT_FUNC)
            links = {off // 8: link_ for off, link_ in self.links.get(section.index, {}).items()}
            functions = []
            if not syms:
                name = section.name.replace("/", "_")
                functions.append(
                    Function(name, section.index, section.name, 0, total, section.data, links)
                )
            for sym in syms:
                if (
                    sym.value % 8
                    or sym.size % 8
                    or sym.size == 0
                    or sym.value + sym.size > section.size
                ):
                    raise ElfError(
                        f"function {sym.name!r} has a bad extent", section.name, sym.value
                    )
                start, count = sym.value // 8, sym.size // 8
                if functions and functions[-1].start + functions[-1].count > start:
                    raise ElfError(
                        f"function {sym.name!r} overlaps another", section.name, sym.value
                    )
                functions.append(
                    Function(
                        sym.name, section.index, section.name, start, count, section.data, links
                    )
                )
            by_section[section.index] = functions
        return by_section

    def _programs(self, license_: str, version: int) -> dict[str, ProgramSpec]:
        # Resolve map references to map names now that every map is known: in code, and in
        # ".maps" (a map-in-map's initial slots). Other sections' relocations never reach the
        # kernel.
        for index, links in self.links.items():
            if not (self.sections[index].executable or self.sections[index].name == ".maps"):
                continue
            for offset, link_ in list(links.items()):
                if link_.kind == "map":
                    name = self.map_at.get((link_.section, link_.offset))
                    if name is None:
                        raise ElfError(
                            f"reference to {link_.symbol.name!r}: no map definition starts here",
                            self.sections[link_.section].name,
                            link_.offset,
                        )
                    links[offset] = Link(link_.symbol, "map", name, link_.section, link_.offset)
                elif (
                    link_.kind == "data"
                    and link_.target != kconfig_module.KCONFIG
                    and self.sections[link_.section].size == 0
                ):
                    raise ElfError(
                        f"reference to {link_.symbol.name!r} in an empty section", link_.target, 0
                    )

        by_section = self._functions()
        starts = {index: [f.start for f in fns] for index, fns in by_section.items()}

        def find(section: int, insn: int) -> Function | None:
            fns = by_section.get(section)
            if not fns:
                return None
            i = bisect_right(starts[section], insn) - 1
            if i >= 0 and fns[i].start <= insn < fns[i].start + fns[i].count:
                return fns[i]
            return None

        ext = self.ext

        def func_info(name: str) -> list[FuncInfo]:
            return ext.func_info.get(name, []) if ext else []

        def line_info(name: str) -> list[LineInfo]:
            return ext.line_info.get(name, []) if ext else []

        def core_relocations(name: str) -> list[CoreRelocation]:
            return ext.core_relocations.get(name, []) if ext else []

        for index in by_section:
            section = self.sections[index]
            self.roles[index] = "subprograms" if section.name == ".text" else "program"

        programs: dict[str, ProgramSpec] = {}
        for index, fns in by_section.items():
            section = self.sections[index]
            if section.name == ".text":
                continue
            # libbpf: "?" before a section name turns the program's autoload off.
            name = section.name.removeprefix("?")
            kind = lookup(name)
            if kind is None:
                raise ElfError(UNKNOWN_SECTION, section.name, 0)
            for fn in fns:
                code = link(fn, find, func_info, line_info, self.endian, core_relocations)
                if fn.name in programs:
                    raise ElfError(
                        f"program {fn.name!r} is defined twice", section.name, fn.start * 8
                    )
                programs[fn.name] = ProgramSpec(
                    name=fn.name,
                    section=name,
                    type=kind.prog_type,
                    expected_attach_type=kind.expected_attach_type,
                    attach_kind=kind.attach_kind,
                    attach_target=kind.attach_target,
                    instructions=code.instructions,
                    references=code.references,
                    license=license_,
                    kernel_version=version,
                    func_info=code.func_info,
                    line_info=code.line_info,
                    functions=code.functions,
                    btf=self.btf,
                    core_relocations=code.core_relocations,
                    externs=code.externs,
                    prog_flags=kind.prog_flags,
                    attach_btf=kind.attach_btf,
                    autoload=name == section.name,
                )
        return programs

    def _default_role(self, section: _Section) -> str:
        if section.type == "SHT_NULL":
            return ""
        if section.type == "SHT_STRTAB":
            return "strings"
        if section.name.startswith(_IGNORED_PREFIXES):
            return "debug info (ignored)"
        if section.type == "SHT_LLVM_ADDRSIG" or section.type.startswith("SHT_0x"):
            return "ignored"
        return "ignored (not code, maps or data)"
