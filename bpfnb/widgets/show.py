"""``show()``: the fitting live view for one map or stream of a BpfObject."""

from __future__ import annotations

from typing import Any

from bpfnb.sys.constants import MapType
from bpfnb.widgets.event_log import EventLog
from bpfnb.widgets.live_histogram import KINDS, LiveHistogram
from bpfnb.widgets.live_rate import LiveRate
from bpfnb.widgets.live_table import LiveTable
from bpfnb.widgets.view import LiveView

__all__ = ["VIEW_KINDS", "show"]

STREAM_TYPES = (MapType.PERF_EVENT_ARRAY, MapType.RINGBUF)
# bcc's BPF_HISTOGRAM is an array of 64 u64 slots indexed by int; log2 of a u64 needs 65.
HISTOGRAM_SLOTS = (64, 65)
VIEW_KINDS = ("log2", "linear", "table", "rate", "log")


def show(
    obj: Any, name: str, kind: str | None = None, interval: float = 1.0, unit: str | None = None
) -> LiveView:
    """A live view of ``obj.maps[name]``, started and tied to ``obj``'s lifetime.

    ``unit`` labels a histogram's buckets (``"ns"``, ``"us"``, ``"ms"``, ``"bytes"``). ``kind``
    picks the view: ``"log2"``/``"linear"`` (LiveHistogram), ``"table"`` (LiveTable),
    ``"rate"`` (LiveRate) or ``"log"`` (EventLog). By default a perf or ring buffer gets an
    EventLog over a new stream (closed with the view), a histogram map a log2 LiveHistogram, a
    source with a ``view_kind`` (a bpftrace histogram) that view, and any other map a LiveTable.
    """
    if kind is not None and kind not in VIEW_KINDS:
        raise ValueError(f"kind must be one of {VIEW_KINDS}, got {kind!r}")
    maps = getattr(obj, "maps", {})
    if name not in maps:
        known = ", ".join(sorted(maps)) or "none"
        label = getattr(obj, "name", "the object")
        raise KeyError(f"{label} has no map {name!r} (its maps: {known})")
    source = maps[name]
    if kind is None:
        kind = getattr(source, "view_kind", None)  # a source may name the view that fits it
    if _map_type(source) in STREAM_TYPES:
        if kind not in (None, "log", "rate"):
            raise ValueError(f"{name!r} is an event stream: kind must be 'log' or 'rate'")
        stream = obj.stream(name)
        if kind == "rate":
            return LiveRate(stream, interval=interval, owner=obj, close_source=True)
        return EventLog(stream, interval=interval, owner=obj, close_source=True)
    if kind == "log":
        raise ValueError(f"{name!r} is not a perf or ring buffer: an EventLog needs a stream")
    if kind in KINDS or (kind is None and looks_like_histogram(source)):
        return LiveHistogram(source, kind=kind or "log2", unit=unit, interval=interval, owner=obj)
    if kind == "rate":
        return LiveRate(source, interval=interval, owner=obj)
    return LiveTable(source, interval=interval, owner=obj)


def looks_like_histogram(source: Any) -> bool:
    """Whether a map has the shape of bcc's ``BPF_HISTOGRAM``: an array of 64 (or 65) integer
    slots with an integer key."""
    if _map_type(source) not in (MapType.ARRAY, MapType.PERCPU_ARRAY):
        return False
    if getattr(source, "max_entries", None) not in HISTOGRAM_SLOTS:
        return False
    return _is_integer(source, "key_type") and _is_integer(source, "value_type")


def _map_type(source: Any) -> Any:
    kind = getattr(source, "type", None)
    if kind is None:
        return None
    try:
        return MapType(kind)
    except (ValueError, TypeError):
        return None


def _is_integer(source: Any, attr: str) -> bool:
    dtype = getattr(getattr(source, attr, None), "dtype", None)
    return dtype is not None and dtype.names is None and dtype.kind in "iu"
