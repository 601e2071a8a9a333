"""One :class:`Map` API over every BPF map fd, with batch-fast ``to_frame()``.

:func:`open_map` wraps an fd given its type and key/value :class:`~bpfnb.frames.Layout`\\ s (both
doors use it) and picks the subclass for the map's type.
"""

from bpfnb.errors import MapError
from bpfnb.maps.base import Map
from bpfnb.maps.factory import MAP_CLASSES, PER_CPU_TYPES, opaque_layout, open_map
from bpfnb.maps.snapshot import Snapshot
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
from bpfnb.sys.cpus import possible_cpus

__all__ = [
    "MAP_CLASSES",
    "PER_CPU_TYPES",
    "ArrayMap",
    "EventMap",
    "HashMap",
    "LpmTrieMap",
    "LruHashMap",
    "LruPerCpuHashMap",
    "Map",
    "MapError",
    "PerCpuArrayMap",
    "PerCpuHashMap",
    "QueueMap",
    "Snapshot",
    "StackMap",
    "StackTraceMap",
    "open_map",
    "opaque_layout",
    "possible_cpus",
]
