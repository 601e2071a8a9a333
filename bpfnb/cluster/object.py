"""``ClusterObject``: one ``%%bpf`` cell loaded on every engine of an ipyparallel cluster.

Its ``maps`` and ``stream()`` read every engine and gather the rows into one DataFrame with
``host`` and ``engine`` columns. An engine that fails or dies is reported in ``failures`` (one
row per engine: host, step, error) and left out; the others keep running. ``close()`` closes
the cell on every engine, and so does this process's exit.
"""

from __future__ import annotations

import atexit
import contextlib
import html
import sys
import uuid
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bpfnb.cells import CellSpec
from bpfnb.closing import CloseCallbacks, Closing
from bpfnb.cluster import engine
from bpfnb.cluster.engine import Built, Failure
from bpfnb.cluster.failures import Failures, no_engine_answered
from bpfnb.cluster.gather import Part
from bpfnb.cluster.maps import ClusterMap
from bpfnb.cluster.remote import Engines
from bpfnb.cluster.streams import ClusterStream
from bpfnb.errors import BpfError, ClusterError, Diagnostic
from bpfnb.events import check_stream_type
from bpfnb.lazy import lazy_import
from bpfnb.object import Maps
from bpfnb.sys.constants import MapType

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

__all__ = ["ClusterObject", "ClusterProgram", "close_at_exit"]


@dataclass
class ClusterProgram:
    """A program of a cluster object: its kernel id and attach points on each engine."""

    name: str
    type_name: str
    ids: dict[int, int] = field(default_factory=dict)
    points: dict[int, tuple[str, ...]] = field(default_factory=dict)

    @property
    def attach_points(self) -> list[str]:
        """Where it is attached, each point with the number of engines attached there."""
        counts: dict[str, int] = {}
        for points in self.points.values():
            for point in points:
                counts[point] = counts.get(point, 0) + 1
        return [f"{point} on {n} engine{'s' if n > 1 else ''}" for point, n in counts.items()]


class ClusterObject(Closing):
    """A cell loaded on several engines: ``maps``, ``stream()``, ``detach()``, ``close()``.

    ``engines`` lists the engines still running it, ``hosts`` says where they are (host, pid,
    program ids), ``failures`` which engines failed and why. ``timeout`` is how long a read
    waits for an engine before leaving it out as gone.
    """

    #: Seconds a read, detach or close waits for the engines.
    timeout = 10.0

    def __init__(
        self,
        spec: CellSpec,
        engines: Engines,
        key: str,
        built: dict[int, Built],
        failures: Failures,
    ) -> None:
        self.name = spec.name
        self.spec = spec
        self.source = spec.source
        self.key = key
        self.failures = failures
        self._engines = engines
        self._built = dict(sorted(built.items()))
        self._live = set(self._built)
        self._closed = False
        self._on_close = CloseCallbacks()
        first = next(iter(self._built.values()))
        self.warnings: list[Diagnostic] = list(first.warnings)
        #: The maps by name, as loaded on the engines.
        self.maps: dict[str, ClusterMap] = Maps(
            self.name, {info.name: ClusterMap(self, info) for info in first.maps}
        )
        _open.add(self)

    # -- where it runs ---------------------------------------------------------------------------

    @property
    def engines(self) -> list[int]:
        """The ids of the engines it runs on (those that failed for good are left out)."""
        return sorted(self._live)

    def host_of(self, engine_id: int) -> str:
        """The host name of an engine ("?" when it never said)."""
        built = self._built.get(engine_id)
        return built.host if built is not None else "?"

    @property
    def hosts(self) -> pd.DataFrame:
        """One row per engine it runs on: ``host``, ``engine``, ``pid`` and ``program_ids``."""
        rows = [
            (b.host, eid, b.pid, [p.id for p in b.programs])
            for eid, b in self._built.items()
            if eid in self._live
        ]
        return pd.DataFrame(rows, columns=["host", "engine", "pid", "program_ids"])

    @property
    def programs(self) -> dict[str, ClusterProgram]:
        """The programs by name, with their ids and attach points on each engine."""
        programs: dict[str, ClusterProgram] = {}
        for eid, built in self._built.items():
            if eid not in self._live:
                continue
            for info in built.programs:
                prog = programs.setdefault(info.name, ClusterProgram(info.name, info.type_name))
                prog.ids[eid] = info.id
                prog.points[eid] = info.attach_points
        return programs

    @property
    def attached(self) -> bool:
        return not self._closed and any(p.attach_points for p in self.programs.values())

    # -- calls to the engines --------------------------------------------------------------------

    def call(self, func: Any, *args: Any, step: str = "", wait: float = 0.0) -> dict[int, Any]:
        """``func(*args)`` on every engine it runs on: each engine's answer, failures recorded
        (raised when no engine answered). ``wait`` adds to :attr:`timeout`."""
        self._check_open()
        engines = self._engines
        outcomes = engines.call(self._live, func, *args, timeout=self.timeout + wait, step=step)
        return self._settle(outcomes, loud=True)

    async def call_async(
        self, func: Any, *args: Any, step: str = "", wait: float = 0.0
    ) -> dict[int, Any]:
        """:meth:`call`, awaited on the running loop."""
        self._check_open()
        pending = self._engines.submit(self._live, func, *args, step=step)
        return self._settle(await self._engines.wait_async(pending, self.timeout + wait))

    def read(self, map_name: str, method: str, kwargs: dict[str, Any]) -> list[Part]:
        """A map read on every engine, as (host, engine, frame) parts."""
        return self._parts(self.call(engine.read, self.key, map_name, method, kwargs, step=method))

    async def read_async(self, map_name: str, method: str, kwargs: dict[str, Any]) -> list[Part]:
        """:meth:`read`, awaited."""
        answers = await self.call_async(
            engine.read, self.key, map_name, method, kwargs, step=method
        )
        return self._parts(answers)

    def _parts(self, answers: dict[int, Any]) -> list[Part]:
        return [(self.host_of(eid), eid, frame) for eid, frame in sorted(answers.items())]

    def _settle(self, outcomes: dict[int, Any], loud: bool = False) -> dict[int, Any]:
        answers: dict[int, Any] = {}
        failed: list[Failure] = []
        for eid, outcome in outcomes.items():
            if not isinstance(outcome, Failure):
                answers[eid] = outcome
                continue
            failure = outcome if outcome.host else replace(outcome, host=self.host_of(eid))
            self.failures.add(failure)
            failed.append(failure)
            if failure.gone:
                self._live.discard(eid)
                if loud:
                    warnings.warn(
                        f"{self.name}: engine {eid} ({failure.host}) {failure.error}; "
                        "left out from now on",
                        RuntimeWarning,
                        stacklevel=_outside_bpfnb(),
                    )
        if failed and not answers:
            raise no_engine_answered(self.name, failed)
        return answers

    def _check_open(self) -> None:
        if self._closed:
            raise BpfError(f"{self.name}: closed")
        if not self._live:
            raise ClusterError(f"{self.name}: no engine is left", self.failures.rows())

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) when the object closes; views and streams stop this way."""
        self._on_close.add(callback)

    def on_close_weak(self, obj: Any, method: str) -> None:
        """Like :meth:`on_close`, without keeping ``obj`` alive."""
        self._on_close.add_weak(obj, method)

    def detach(self) -> None:
        """Detach the programs on every engine; the maps stay readable."""
        for eid, built in self.call(engine.detach, self.key, step="detach").items():
            self._built[eid] = built

    def close(self) -> None:
        """Close the cell on every engine (an engine that is gone has nothing left). Idempotent."""
        if getattr(self, "_closed", True):  # closed, or its __init__ failed
            return
        self._closed = True
        _open.discard(self)
        self._on_close.run()  # what a callback raises must not keep the engines' cells open
        with contextlib.suppress(Exception):  # a client already closed, at exit
            self._engines.call(self._live, engine.close, self.key, timeout=self.timeout)

    # -- events ----------------------------------------------------------------------------------

    def stream(self, name: str, maxlen: int = 100_000, event_type: Any = None) -> ClusterStream:
        """An event stream over the perf or ring buffer ``name`` on every engine (see
        :class:`ClusterStream`); it closes with the object."""
        source = self.maps[name]
        check_stream_type(int(source.type), name)
        kind = "ring buffer" if source.type == MapType.RINGBUF else "perf buffer"
        key = f"{self.key}/{name}/{uuid.uuid4().hex[:8]}"
        self.call(engine.open_stream, key, self.key, name, maxlen, event_type, step="stream")
        stream = ClusterStream(self, name, key, maxlen, kind)
        self.on_close_weak(stream, "close")
        return stream

    # -- display ---------------------------------------------------------------------------------

    def _state(self) -> str:
        if self._closed:
            return "closed"
        return "attached" if self.attached else "loaded, detached"

    def _where(self) -> str:
        hosts = sorted({self.host_of(eid) for eid in self._live})
        return f"{len(self._live)} engine(s) on {', '.join(hosts) or 'no host'}"

    def __repr__(self) -> str:
        lines = [f"ClusterObject {self.name!r} ({self._state()}) on {self._where()}"]
        for prog in self.programs.values():
            where = ", ".join(prog.attach_points) or "not attached"
            lines.append(f"  program {prog.name} [{prog.type_name}] -> {where}")
        for name, m in self.maps.items():
            lines.append(f"  map {name} [{m.type_name}] {m.key_type_name} -> {m.value_type_name}")
        if self.failures:
            lines.append(repr(self.failures))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><td><code>{esc(p.name)}</code></td><td>{esc(p.type_name)}</td>"
            f"<td>{esc(', '.join(p.attach_points) or 'not attached')}</td></tr>"
            for p in self.programs.values()
        )
        maps = ", ".join(f"<code>{esc(name)}</code>" for name in self.maps) or "none"
        out = (
            f"<div><b>ClusterObject</b> <code>{esc(self.name)}</code> <i>({esc(self._state())})"
            f"</i> on {esc(self._where())}<table><tr><th>program</th><th>type</th>"
            f"<th>attached to</th></tr>{rows}</table>maps: {maps}"
        )
        if self.failures:
            out += self.failures._repr_html_()
        return out + "</div>"


def _outside_bpfnb() -> int:
    # The stacklevel that makes a warning point at the first caller outside bpfnb: the
    # user's line (counted from the function that calls this one and warns).
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("bpfnb."):
        frame, level = frame.f_back, level + 1
    return level


_open: weakref.WeakSet[ClusterObject] = weakref.WeakSet()


def _close_open() -> None:
    for obj in list(_open):
        obj.timeout = min(obj.timeout, 2.0)  # an engine gone at exit has nothing left anyway
        obj.close()


def close_at_exit() -> None:
    """Close every open cluster object at this process's exit, before the clients go."""
    # Registered again after each load, so that it runs before the exit handlers of clients
    # and clusters made meanwhile (atexit runs last-registered first): they must still be up.
    atexit.unregister(_close_open)
    atexit.register(_close_open)
