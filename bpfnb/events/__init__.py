"""Event streams: perf buffers and ring buffers read from their mmapped rings into DataFrames.

:func:`open_stream` takes the map's fd and the event's :class:`~bpfnb.frames.Layout` and returns
an :class:`EventStream`; ``BpfObject.stream(name)`` calls it with what its loader knows.
"""

from __future__ import annotations

from bpfnb.errors import BpfError
from bpfnb.events.drops import DROP_COUNTER_MAP, DROP_KEY_SIZE, DropCounter
from bpfnb.events.perfbuf import DEFAULT_PAGES, PerfBufferReader
from bpfnb.events.ringbuf import RingBufferReader
from bpfnb.events.stream import Counter, EventReader, EventStream, StreamStats
from bpfnb.frames import Layout
from bpfnb.sys import bpf
from bpfnb.sys.constants import MapType, lower_name

__all__ = [
    "DROP_COUNTER_MAP",
    "DROP_KEY_SIZE",
    "DropCounter",
    "EventStream",
    "StreamStats",
    "check_stream_type",
    "open_stream",
]


def check_stream_type(map_type: int, name: str) -> None:
    """Raise :class:`BpfError` unless ``map_type`` is a perf event array or a ring buffer."""
    if map_type not in (MapType.PERF_EVENT_ARRAY, MapType.RINGBUF):
        raise BpfError(
            f"{name}: a {lower_name(MapType, map_type)} map is not an event stream; use "
            "BPF_PERF_OUTPUT or BPF_RINGBUF_OUTPUT (bcc), or a perf event array or ring buffer map"
        )


def open_stream(
    map_fd: int,
    layout: Layout,
    name: str,
    *,
    maxlen: int = 100_000,
    drops: Counter | None = None,
    perf_pages: int = DEFAULT_PAGES,
    background: bool = True,
) -> EventStream:
    """An :class:`EventStream` of ``layout`` records over the perf event array or ring buffer
    ``map_fd`` (called ``name``).

    ``drops`` counts the events the program failed to submit (see :mod:`bpfnb.events.drops`;
    None when the program does not count them); ``perf_pages`` is the size of each per-CPU
    perf ring in pages (a power of two); a ring buffer's size is fixed by its map. With
    ``background`` a thread drains the rings from now on. The stream owns ``drops``.
    """
    if maxlen < 1:
        raise ValueError(f"maxlen must be at least 1, not {maxlen}")
    info = bpf.map_info(map_fd)
    check_stream_type(info.type, name)
    reader: EventReader
    if info.type == MapType.PERF_EVENT_ARRAY:
        reader = PerfBufferReader(map_fd, layout.size, pages=perf_pages)
    else:
        reader = RingBufferReader(map_fd, layout.size, int(info.max_entries))
    try:
        return EventStream(name, reader, layout, maxlen=maxlen, drops=drops, background=background)
    except BaseException:
        reader.close()
        raise
