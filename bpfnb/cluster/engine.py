"""What each engine of a cluster runs, called through ipyparallel by the notebook's client.

An engine keeps its objects in its own :class:`bpfnb.session.Session`, by a key unique to the
notebook object that made them, so two notebooks on one cluster never meet; that session
closes everything at the engine's exit. Each call answers with plain data (descriptions,
DataFrames, stream counts) or a :class:`Failure`, never by raising: the notebook then shows
the engine's error itself (a ``CompileError`` with its cell lines), not ipyparallel's text.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bpfnb.cells import CellSpec, load_cell
from bpfnb.errors import BpfError, Diagnostic
from bpfnb.events import EventStream
from bpfnb.events.stream import StreamStats
from bpfnb.frames import Layout
from bpfnb.maps.types import EventMap
from bpfnb.object import BpfObject
from bpfnb.session import Session

__all__ = [
    "Built",
    "Failure",
    "MapInfo",
    "ProgramInfo",
    "build",
    "close",
    "close_stream",
    "detach",
    "open_stream",
    "poll_stream",
    "read",
]

T = TypeVar("T")


@dataclass(frozen=True)
class ProgramInfo:
    """A program as loaded on one engine: its type, kernel id and attach points."""

    name: str
    type_name: str
    id: int
    attach_points: tuple[str, ...]


@dataclass(frozen=True)
class MapInfo:
    """A map as loaded on one engine: its type, key and value layouts, and size."""

    name: str
    type: int
    type_name: str
    key_type: Layout
    value_type: Layout
    max_entries: int
    per_cpu: bool
    event_type: Layout | None = None


@dataclass(frozen=True)
class Built:
    """What an engine loaded for a cell: where it runs, and its programs and maps."""

    host: str
    pid: int
    programs: tuple[ProgramInfo, ...]
    maps: tuple[MapInfo, ...]
    warnings: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True)
class Failure:
    """An engine's failure at one step: ``error`` is its text, ``exception`` the error itself
    when it travels whole (bpfnb's errors do). ``host`` is empty when the engine never said."""

    engine: int
    step: str
    error: str
    host: str = ""
    exception: BaseException | None = field(default=None, compare=False)
    #: The engine is gone (died, stopped, or stopped answering): later calls leave it out.
    gone: bool = False


_session: Session | None = None
_streams: dict[str, EventStream] = {}


def _objects() -> Session:
    # Made on first use, so that importing this module (the notebook does) registers nothing.
    global _session
    if _session is None:
        _session = Session()
    return _session


def _answer(step: str, call: Callable[[], T]) -> T | Failure:
    try:
        return call()
    except (Exception, KeyboardInterrupt) as err:  # an interrupt stops only this call
        return _failure(step, err)


def _failure(step: str, err: BaseException) -> Failure:
    text = f"{type(err).__name__}: {err}" if not isinstance(err, BpfError) else str(err)
    if isinstance(err, KeyboardInterrupt):
        text = "interrupted"
    whole = err if isinstance(err, BpfError) else None
    return Failure(-1, step, text, socket.gethostname(), whole)


def _object(key: str) -> BpfObject:
    obj = _objects().objects.get(key)
    if obj is None or obj.closed:
        raise BpfError(f"no live object {key!r} on this engine (closed, or the engine restarted)")
    return obj


def describe(obj: BpfObject) -> Built:
    """An engine's object as plain data for the notebook."""
    programs = tuple(
        ProgramInfo(p.name, p.type_name, p.id, tuple(p.attach_points))
        for p in obj.programs.values()
    )
    maps = tuple(
        MapInfo(
            name,
            int(m.type),
            m.type_name,
            m.key_type,
            m.value_type,
            m.max_entries,
            m.per_cpu,
            m.event_type if isinstance(m, EventMap) else None,
        )
        for name, m in obj.maps.items()
    )
    return Built(socket.gethostname(), os.getpid(), programs, maps, tuple(obj.warnings))


def build(key: str, spec: CellSpec, engine: int) -> Built | Failure:
    """Load the cell with this engine's ``{engine}``, ``{pid}`` and ``{host}``, keep it under
    ``key`` (replacing what was there once the new one is loaded), and describe it."""

    def load() -> Built:
        mine = spec.for_engine(engine=engine, pid=os.getpid(), host=socket.gethostname())
        return describe(_objects().replace(key, lambda: load_cell(mine)))

    return _answer("load", load)


def close(key: str) -> None:
    """Close the object kept under ``key`` and its streams (nothing when there is none)."""
    for stream_key in [k for k in _streams if k.startswith(f"{key}/")]:
        _streams.pop(stream_key).close()
    _objects().close(key)


def detach(key: str) -> Built | Failure:
    """Detach the object's programs (its maps stay readable) and describe it again."""

    def run() -> Built:
        obj = _object(key)
        obj.detach()
        return describe(obj)

    return _answer("detach", run)


def read(key: str, map_name: str, method: str, kwargs: dict[str, Any]) -> Any:
    """``obj.maps[map_name].<method>(**kwargs)``: a map read such as ``to_frame``."""
    return _answer(method, lambda: getattr(_object(key).maps[map_name], method)(**kwargs))


def open_stream(
    stream_key: str, key: str, map_name: str, maxlen: int, event_type: Any
) -> None | Failure:
    """Open an event stream over the object's map, kept under ``stream_key``."""

    def run() -> None:
        stream = _object(key).stream(map_name, maxlen=maxlen, event_type=event_type)
        _streams[stream_key] = stream

    return _answer("stream", run)


def poll_stream(stream_key: str, timeout: float) -> tuple[Any, StreamStats] | Failure:
    """The events that arrived since the last call (a DataFrame, then forgotten here) and the
    stream's counts."""

    def run() -> tuple[Any, StreamStats]:
        stream = _streams.get(stream_key)
        if stream is None:
            raise BpfError("this stream is closed on this engine")
        stream.poll(timeout)
        frame = stream.to_frame()
        stream.clear()
        return frame, stream.stats

    return _answer("poll", run)


def close_stream(stream_key: str) -> None:
    """Close one stream (the object stays)."""
    stream = _streams.pop(stream_key, None)
    if stream is not None:
        stream.close()
