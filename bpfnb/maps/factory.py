"""Make the right :class:`Map` subclass for a map fd, given its type and key/value Layouts."""

from __future__ import annotations

import numpy as np

from bpfnb.frames import Layout
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
    QueueMap,
    StackMap,
)
from bpfnb.sys import FD, MapType

__all__ = ["MAP_CLASSES", "PER_CPU_TYPES", "open_map", "opaque_layout"]

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
    MapType.QUEUE: QueueMap,
    MapType.STACK: StackMap,
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


#: Map types whose values hold one slot per possible CPU.
PER_CPU_TYPES = {MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH}


def opaque_layout(size: int) -> Layout:
    """Raw bytes of ``size``, shown as one array column: a type nobody described."""
    if size == 0:
        return Layout(np.dtype([]), (), "void")
    return Layout(np.dtype((np.uint8, (size,))), (), f"u8[{size}]")
