"""bcc's maps as :class:`bpfnb.Map`\\ s: key/value Layouts made once, here, from bcc's types.

libbcc describes each table's key and value as JSON, which bcc turns into ctypes types; perf
and ring buffers also get the fields of the struct the program submits
(``bpf_perf_event_fields``). :func:`from_bcc` wraps a map of a compiled ``bcc.BPF``;
:func:`from_bcc_table` wraps a table a plain bcc script already holds (``b["counts"]``).
"""

from __future__ import annotations

import ctypes as ct
import json
import re
from dataclasses import replace
from typing import Any

from bpfnb.bcc.bindings import import_bcc
from bpfnb.errors import NoSuchMapError
from bpfnb.frames import Layout, layout_of
from bpfnb.maps import PER_CPU_TYPES, EventMap, Map, opaque_layout, open_map
from bpfnb.sys import bpf

__all__ = ["event_layout", "from_bcc", "from_bcc_table"]

# The C types libbcc names in perf event fields ("comm#char[16]"), as ctypes.
_EVENT_FIELD_TYPES: dict[str, Any] = {
    "char": ct.c_char,
    "s8": ct.c_byte,
    "signed char": ct.c_byte,
    "unsigned char": ct.c_ubyte,
    "u8": ct.c_ubyte,
    "_Bool": ct.c_bool,
    "bool": ct.c_bool,
    "short": ct.c_short,
    "s16": ct.c_short,
    "unsigned short": ct.c_ushort,
    "u16": ct.c_ushort,
    "int": ct.c_int,
    "s32": ct.c_int,
    "enum": ct.c_int,
    "unsigned int": ct.c_uint,
    "u32": ct.c_uint,
    "long": ct.c_long,
    "unsigned long": ct.c_ulong,
    "long long": ct.c_longlong,
    "s64": ct.c_longlong,
    "unsigned long long": ct.c_ulonglong,
    "u64": ct.c_ulonglong,
    "__int128": ct.c_longlong * 2,
    "unsigned __int128": ct.c_ulonglong * 2,
}
_ARRAY = re.compile(r"^(?P<type>.+?) ?\[(?P<length>\d+)\]$")


def _ctype(describe: Any, module: Any, raw_name: bytes) -> Any:
    text = describe(module, raw_name)
    text = text.decode() if text else ""
    if not text:
        return None
    # bcc's own decoder of libbcc's type descriptions, used here only, at the door.
    return import_bcc().BPF._decode_table_type(json.loads(text))


def _field_ctype(c_type: str) -> Any:
    c_type = c_type.strip()
    if c_type.startswith("enum "):
        c_type = "enum"
    if c_type.endswith("*"):
        return ct.c_void_p
    array = _ARRAY.match(c_type)
    if array:
        return _field_ctype(array["type"]) * int(array["length"])
    return _EVENT_FIELD_TYPES[c_type]


def event_layout(program: Any, name: str) -> tuple[Layout | None, str]:
    """The Layout of the struct the program submits to event map ``name``, or (None, why)."""
    lib = import_bcc().lib
    raw = name.encode()
    count = lib.bpf_perf_event_fields(program.module, raw)
    if count <= 0:
        return None, "bcc saw no submit of a struct to this map, so the event type is unknown"
    fields = []
    for i in range(count):
        field = lib.bpf_perf_event_field(program.module, raw, i).decode()
        field_name, _, c_type = field.partition("#")
        try:
            fields.append((field_name, _field_ctype(c_type)))
        except KeyError:
            return None, f"bcc cannot describe field {field_name!r} of type {c_type!r}"
    event = type(f"{name}_event", (ct.Structure,), {"_fields_": fields})
    # bcc names the fields but not the struct: show them.
    c_name = "struct {" + ", ".join(field_name for field_name, _ in fields) + "}"
    return replace(layout_of(event), c_name=c_name), ""


def from_bcc(program: Any, name: str) -> Map:
    """A :class:`Map` over the map ``name`` of a compiled ``bcc.BPF`` (bcc keeps the fd).

    Works where bcc's own table class does not: a per-CPU map whose value is not a multiple of
    8 bytes (bcc raises "Leaf must be aligned to 8 bytes"; bpfnb pads each CPU's slot as the
    kernel does).
    """
    lib = import_bcc().lib
    raw = name.encode()
    fd = lib.bpf_table_fd(program.module, raw)
    if fd < 0:
        raise NoSuchMapError(f"the program has no map {name!r}")
    key = _ctype(lib.bpf_table_key_desc, program.module, raw)
    value = _ctype(lib.bpf_table_leaf_desc, program.module, raw)
    made = _open(int(fd), name, key, value)
    if isinstance(made, EventMap):
        made.event_type, made.event_type_note = event_layout(program, name)
    return made


def from_bcc_table(table: Any) -> Map:
    """A :class:`Map` over a table of a plain bcc script (``b["counts"]``); bcc keeps the fd."""
    raw_name = getattr(table, "_name", None) or getattr(table, "name", b"")
    value_ctype = getattr(table, "sLeaf", None) or table.Leaf
    name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
    return _open(int(table.map_fd), name, getattr(table, "Key", None), value_ctype)


def _open(fd: int, name: str, key_ctype: Any, value_ctype: Any) -> Map:
    info = bpf.map_info(fd)
    name = name or info.name.decode()
    key = layout_of(key_ctype) if key_ctype is not None else opaque_layout(info.key_size)
    value = layout_of(value_ctype) if value_ctype is not None else opaque_layout(info.value_size)
    if value.size != info.value_size and info.type not in PER_CPU_TYPES:
        value = opaque_layout(info.value_size)
    return open_map(
        fd,
        name=name,
        map_type=info.type,
        key=key,
        value=value,
        max_entries=info.max_entries,
        flags=info.map_flags,
        owns_fd=False,
    )
