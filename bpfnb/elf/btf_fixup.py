"""An object's BTF as the kernel takes it: what clang leaves for the loader to fill in, fixed up
as libbpf fixes it up before BPF_BTF_LOAD.

- DATASECs get their sizes and their variables' offsets (clang writes zeros: only the ELF
  section sizes and symbol values know them), in offset order.
- ``__kconfig`` externs become allocated variables of the ``.kconfig`` map.
- ``__ksym`` externs (``.ksyms``) become 4-byte allocated ``int`` variables, one after another;
  a kfunc's FUNC becomes global, its nameless parameters are named, and the DATASEC refers to a
  ``dummy_ksym`` variable added for it (the kernel takes neither extern linkage nor FUNCs in a
  DATASEC).
- Hidden global subprograms become static FUNCs.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Mapping

from bpfnb.elf.btf import Btf

__all__ = ["for_kernel"]

_INT, _FUNC, _VAR, _DATASEC = 1, 12, 14, 15
_STATIC, _GLOBAL, _ALLOCATED, _EXTERN = 0, 1, 1, 2
KSYMS = ".ksyms"
DUMMY_KSYM = "dummy_ksym"


class _Editor:
    """The type and string sections of a BTF as bytearrays, edited in place or appended to."""

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self.e = btf.endian
        self.types = bytearray(btf._types)
        self.strings = bytearray(btf._strings)
        self.count = len(btf)

    def at(self, type_id: int) -> int:
        return int(self.btf._offsets[type_id])

    def get(self, pos: int) -> int:
        return int(struct.unpack_from(self.e + "I", self.types, pos)[0])

    def put(self, pos: int, value: int) -> None:
        struct.pack_into(self.e + "I", self.types, pos, value)

    def add_string(self, text: str) -> int:
        offset = len(self.strings)
        self.strings += text.encode() + b"\0"
        return offset

    def add_var(self, name: str, type_id: int) -> int:
        name_off = self.add_string(name)
        self.types += struct.pack(self.e + "IIII", name_off, _VAR << 24, type_id, _ALLOCATED)
        self.count += 1
        return self.count - 1

    def raw(self) -> bytes:
        e, raw = self.e, self.btf.raw
        hdr_len = struct.unpack_from(e + "I", raw, 4)[0]
        header = bytearray(raw[:hdr_len])
        struct.pack_into(
            e + "4I", header, 8, 0, len(self.types), len(self.types), len(self.strings)
        )
        return bytes(header + self.types + self.strings)


def _int32(btf: Btf) -> int:
    # The first 32-bit integer type, which libbpf gives the .ksyms variables.
    for type_id in range(1, len(btf)):
        if btf.kind_of(type_id) == "INT" and btf.type(type_id).bits == 32:
            return type_id
    return 0


def _fix_ksyms(edit: _Editor, datasec_id: int) -> None:
    btf = edit.btf
    datasec = btf.type(datasec_id)
    entries = [btf.type(entry.type_id) for entry in datasec.members]
    int_id = _int32(btf)
    dummy_id = dummy_name = 0
    if any(t.kind == "FUNC" for t in entries):
        dummy_id = edit.add_var(DUMMY_KSYM, int_id)
        dummy_name = edit.get(len(edit.types) - 16)
    base = edit.at(datasec_id)
    for i, t in enumerate(entries):
        at = edit.at(t.id)
        secinfo = base + 12 + 12 * i
        if t.kind == "FUNC":
            proto = btf.type(t.type_id)
            for j, param in enumerate(proto.members):
                if param.type_id and not param.name:
                    edit.put(edit.at(proto.id) + 12 + 8 * j, dummy_name)
            edit.put(at + 4, (edit.get(at + 4) & ~0xFFFF) | _GLOBAL)
            edit.put(secinfo, dummy_id)
        elif t.kind == "VAR":
            edit.put(at + 8, int_id)
            edit.put(at + 12, _ALLOCATED)
        edit.put(secinfo + 4, 4 * i)
        edit.put(secinfo + 8, 4)
    edit.put(base + 8, 4 * len(entries))


def _fix_datasec(
    edit: _Editor, datasec_id: int, sizes: Mapping[str, int], offsets: Mapping[str, int]
) -> None:
    btf = edit.btf
    datasec = btf.type(datasec_id)
    base = edit.at(datasec_id)
    if datasec.name in sizes:
        edit.put(base + 8, sizes[datasec.name])
    entries = []
    for entry in datasec.members:
        var = btf.type(entry.type_id) if 0 < entry.type_id < len(btf) else None
        offset = offsets.get(var.name, entry.offset) if var is not None else entry.offset
        entries.append((offset, entry.type_id, entry.size))
        if var is not None and var.kind == "VAR" and var.linkage == _EXTERN:
            # A __kconfig extern, allocated in the .kconfig map.
            edit.put(edit.at(var.id) + 12, _ALLOCATED)
    for i, (offset, var_id, size) in enumerate(sorted(entries)):
        struct.pack_into(edit.e + "III", edit.types, base + 12 + 12 * i, var_id, offset, size)


def for_kernel(
    btf: Btf,
    section_sizes: Mapping[str, int],
    offsets: Mapping[str, int],
    hidden_functions: Collection[str] = (),
) -> bytes:
    """The raw BTF to load: ``section_sizes`` by section name, ``offsets`` by variable name (for
    DATASECs), ``hidden_functions`` made static."""
    edit = _Editor(btf)
    hidden = set(hidden_functions)
    for type_id in range(1, len(btf)):
        kind = btf.kind_of(type_id)
        if kind == "DATASEC":
            if btf.type(type_id).name == KSYMS:
                _fix_ksyms(edit, type_id)
            else:
                _fix_datasec(edit, type_id, section_sizes, offsets)
        elif kind == "FUNC" and hidden:
            t = btf.type(type_id)
            if t.name in hidden and t.linkage == _GLOBAL:
                edit.put(edit.at(type_id) + 4, (_FUNC << 24) | _STATIC)
    return edit.raw()
