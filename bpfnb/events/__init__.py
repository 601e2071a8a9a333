"""Event streams: perf buffers and ring buffers read from their mmapped rings into DataFrames.

``open_stream(obj, name)`` (what ``BpfObject.stream()`` calls) returns an
:class:`EventStream`. The event's type comes from ``event_type`` when given (a numpy dtype, a
ctypes type or a :class:`bpfnb.frames.Layout`), else from bcc's idea of the struct the program
submits.
"""

from __future__ import annotations

import contextlib
import ctypes as ct
import io
import re
import warnings
from typing import Any

import numpy as np

from bpfnb.bcc.preamble import DROP_COUNTER_MAP
from bpfnb.errors import BpfError
from bpfnb.events.drops import DropCounter
from bpfnb.events.perfbuf import DEFAULT_PAGES, PerfBufferReader
from bpfnb.events.ringbuf import RingBufferReader
from bpfnb.events.stream import EventReader, EventStream, StreamStats
from bpfnb.frames import Layout, layout_of
from bpfnb.sys import bpf
from bpfnb.sys.constants import MapType

__all__ = ["EventStream", "StreamStats", "as_layout", "open_stream"]


def as_layout(event_type: Any) -> Layout:
    """The :class:`Layout` of an event type given as a Layout, numpy dtype or ctypes type."""
    if isinstance(event_type, Layout):
        return event_type
    if isinstance(event_type, type) and issubclass(event_type, ct._SimpleCData | ct.Structure):
        return layout_of(event_type)
    if isinstance(event_type, type) and issubclass(event_type, ct.Union | ct.Array):
        return layout_of(event_type)
    try:
        return Layout(np.dtype(event_type))
    except TypeError as err:
        raise TypeError(
            f"event_type must be a numpy dtype, a ctypes type or a Layout, not {event_type!r}"
        ) from err


def _bcc_of(obj: Any) -> Any:
    # A BpfObject made by bcc keeps bcc's BPF object as ``.bcc``; a bare bcc BPF works too.
    bcc_obj = getattr(obj, "bcc", None)
    if bcc_obj is None and hasattr(obj, "get_table") and hasattr(obj, "module"):
        bcc_obj = obj
    return bcc_obj


def _map_fd(obj: Any, name: str, bcc_obj: Any) -> int:
    maps = getattr(obj, "maps", None)
    if isinstance(maps, dict) and name in maps:
        return int(maps[name].fd if hasattr(maps[name], "fd") else maps[name].map_fd)
    if bcc_obj is not None:
        try:
            return int(bcc_obj[name.encode()].map_fd)
        except KeyError:
            pass
    known = sorted(maps) if isinstance(maps, dict) else []
    raise BpfError(f"no map {name!r} to stream from" + (f"; maps: {known}" if known else ""))


def _bcc_event_layout(bcc_obj: Any, name: str) -> Layout:
    from bpfnb.bcc import import_bcc

    table_module = import_bcc().table
    try:
        # On a type it cannot map, bcc prints to stderr and calls sys.exit: say it our way.
        with contextlib.redirect_stderr(io.StringIO()):
            event_class = table_module._get_event_class(bcc_obj[name.encode()])
    except SystemExit as err:
        raise BpfError(
            f"{name}: bcc cannot describe this event struct (nested or unusual types); "
            "pass event_type= (a ctypes Structure or numpy dtype)"
        ) from err
    if not event_class._fields_:
        raise BpfError(
            f"{name}: bcc saw no submit of a struct to this map, so the event type is unknown; "
            "pass event_type= (a ctypes Structure or numpy dtype)"
        )
    return layout_of(event_class)


def _drop_counter(bcc_obj: Any, name: str) -> DropCounter | None:
    if bcc_obj is None:
        return None
    try:
        table = bcc_obj[DROP_COUNTER_MAP.encode()]
    except KeyError:  # compiled without the bpfnb preamble
        return None
    return DropCounter(int(table.map_fd), name)


def _warn_if_drops_uncounted(source: str, name: str) -> None:
    # Only the program can see a failed ring buffer submit; say so when it does not count them.
    if source and not re.search(
        rf"BPFNB_(CHECK_SUBMIT|COUNT_DROP)\s*\(\s*{re.escape(name)}\b", source
    ):
        warnings.warn(
            f"ring buffer {name!r}: the program does not count failed submits, so "
            f"stats.dropped stays 0; check each submit with BPFNB_CHECK_SUBMIT({name}, err) "
            f"or BPFNB_COUNT_DROP({name})",
            stacklevel=3,
        )


def open_stream(
    obj: Any,
    name: str,
    maxlen: int = 100_000,
    event_type: Any = None,
    *,
    perf_pages: int = DEFAULT_PAGES,
) -> EventStream:
    """An :class:`EventStream` over the perf event array or ring buffer map ``name`` of ``obj``.

    ``obj`` is a ``BpfObject`` (or a bcc ``BPF``). ``perf_pages`` is the size of each per-CPU
    perf ring in pages (a power of two); a ring buffer's size is fixed by its map. The stream
    closes when ``obj`` does.
    """
    if maxlen < 1:
        raise ValueError(f"maxlen must be at least 1, not {maxlen}")
    if getattr(obj, "closed", False):
        raise BpfError(f"{getattr(obj, 'name', 'object')}: closed, so it has no maps to stream")
    bcc_obj = _bcc_of(obj)
    fd = _map_fd(obj, name, bcc_obj)
    info = bpf.map_info(fd)
    if info.type not in (MapType.PERF_EVENT_ARRAY, MapType.RINGBUF):
        raise BpfError(
            f"{name}: a {MapType(info.type).name.lower()} map is not an event stream; "
            "use BPF_PERF_OUTPUT or BPF_RINGBUF_OUTPUT"
        )
    if event_type is not None:
        layout = as_layout(event_type)
    elif bcc_obj is not None:
        layout = _bcc_event_layout(bcc_obj, name)
    else:
        raise BpfError(f"{name}: the event type is unknown; pass event_type=")
    reader: EventReader
    if info.type == MapType.PERF_EVENT_ARRAY:
        reader = PerfBufferReader(fd, layout.size, pages=perf_pages)
    else:
        reader = RingBufferReader(fd, layout.size, int(info.max_entries))
    try:
        drops = _drop_counter(bcc_obj, name)
    except BaseException:
        reader.close()
        raise
    if info.type == MapType.RINGBUF and drops is not None:
        _warn_if_drops_uncounted(getattr(obj, "source", ""), name)
    stream = EventStream(name, reader, layout, maxlen=maxlen, drops=drops)
    on_close_weak = getattr(obj, "on_close_weak", None)
    if on_close_weak is not None:
        on_close_weak(stream, "close")
    return stream
