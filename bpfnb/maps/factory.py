"""Make the right :class:`Map` subclass for a map fd, from plain facts or from a bcc table."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from bpfnb.frames import Layout, layout_of
from bpfnb.maps.base import Map
from bpfnb.maps.stacks import StackTraceMap
from bpfnb.maps.types import (
    ArrayMap,
    EventMap,
    HashMap,
    LpmTrieMap,
    LruHashMap,
    LruPerCpuHashMap,
    PerCpuArrayMap,
    PerCpuHashMap,
)
from bpfnb.sys import FD, MapType, bpf

__all__ = ["MAP_CLASSES", "from_bcc", "from_bcc_table", "open_map"]

MAP_CLASSES: dict[int, type[Map]] = {
    MapType.HASH: HashMap,
    MapType.ARRAY: ArrayMap,
    MapType.PERCPU_HASH: PerCpuHashMap,
    MapType.PERCPU_ARRAY: PerCpuArrayMap,
    MapType.LRU_HASH: LruHashMap,
    MapType.LRU_PERCPU_HASH: LruPerCpuHashMap,
    MapType.LPM_TRIE: LpmTrieMap,
    MapType.STACK_TRACE: StackTraceMap,
    MapType.PERF_EVENT_ARRAY: EventMap,
    MapType.RINGBUF: EventMap,
    MapType.USER_RINGBUF: EventMap,
    MapType.QUEUE: EventMap,
    MapType.STACK: EventMap,
}


def open_map(
    fd: int | FD,
    *,
    name: str,
    map_type: int,
    key: Layout,
    value: Layout,
    max_entries: int,
    flags: int = 0,
    owns_fd: bool = True,
) -> Map:
    """A :class:`Map` over ``fd``, of the subclass for ``map_type``.

    ``key``/``value`` are the C types as :class:`~bpfnb.frames.Layout`; for per-CPU maps,
    ``value`` is one CPU's value. With ``owns_fd`` the Map closes ``fd`` when it is closed.
    """
    cls = MAP_CLASSES.get(int(map_type), Map)
    return cls(
        fd,
        name=name,
        map_type=map_type,
        key=key,
        value=value,
        max_entries=max_entries,
        flags=flags,
        owns_fd=owns_fd,
    )


def from_bcc_table(table: Any) -> Map:
    """A :class:`Map` over a bcc table's fd (bcc keeps owning the fd).

    Key and value types come from the table's ctypes ``Key``/``Leaf`` (for per-CPU tables, the
    one-CPU ``sLeaf``); type, size and flags from the kernel's own map info.
    """
    raw_name = getattr(table, "_name", None) or getattr(table, "name", b"")
    value_ctype = getattr(table, "sLeaf", None) or table.Leaf
    return _from_bcc_types(int(table.map_fd), raw_name, getattr(table, "Key", None), value_ctype)


def from_bcc(program: Any, name: str) -> Map:
    """A :class:`Map` over the map ``name`` of a ``bcc.BPF`` object, without making bcc's table.

    Same as ``from_bcc_table(program[name])``, except where bcc cannot make its table: a
    per-CPU map whose value is not a multiple of 8 bytes (bcc raises "Leaf must be aligned to
    8 bytes"; bpfnb pads each CPU's slot as the kernel does).
    """
    from bpfnb.bcc import import_bcc

    bcc = import_bcc()
    raw = name.encode()
    fd = bcc.lib.bpf_table_fd(program.module, raw)
    if fd < 0:
        raise KeyError(name)

    def ctype(describe: Any) -> Any:
        text = describe(program.module, raw)
        text = text.decode() if text else ""
        return bcc.BPF._decode_table_type(json.loads(text)) if text else None

    key = ctype(bcc.lib.bpf_table_key_desc)
    value = ctype(bcc.lib.bpf_table_leaf_desc)
    return _from_bcc_types(int(fd), raw, key, value)


def _from_bcc_types(fd: int, raw_name: Any, key_ctype: Any, value_ctype: Any) -> Map:
    info = bpf.map_info(fd)
    raw_name = raw_name or info.name
    name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
    key = layout_of(key_ctype) if key_ctype is not None else _opaque(info.key_size)
    value = layout_of(value_ctype) if value_ctype is not None else _opaque(info.value_size)
    if value.size != info.value_size and info.type not in _PER_CPU:
        value = _opaque(info.value_size)
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


_PER_CPU = {MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH}


def _opaque(size: int) -> Layout:
    # A type bcc could not describe: raw bytes, shown as one array column.
    if size == 0:
        return Layout(np.dtype([]), (), "void")
    return Layout(np.dtype((np.uint8, (size,))), (), f"u8[{size}]")
