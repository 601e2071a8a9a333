"""One :class:`Map` API over every BPF map fd, with batch-fast ``to_frame()``.

``open_map`` wraps an fd given its key/value :class:`~bpfnb.frames.Layout`\\ s (the ELF loader
uses it); ``from_bcc_table`` wraps a bcc table. Both pick the subclass for the map's type.
"""

from bpfnb.errors import MapError
from bpfnb.maps.base import Map
from bpfnb.maps.factory import MAP_CLASSES, from_bcc, from_bcc_table, open_map
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
)
from bpfnb.sys.cpus import possible_cpus

__all__ = [
    "MAP_CLASSES",
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
    "Snapshot",
    "StackTraceMap",
    "from_bcc",
    "from_bcc_table",
    "open_map",
    "possible_cpus",
]
