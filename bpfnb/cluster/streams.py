"""``ClusterStream``: one event stream on every engine, gathered here with a host column.

Each engine drains its own rings (an :class:`bpfnb.EventStream` there); ``poll()`` brings what
each received since the last poll here, labelled with its host and engine, and forgets it
there. The rows kept here are bounded by ``maxlen``; the counts stay per engine.
"""

from __future__ import annotations

import html
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from bpfnb.closing import Closing
from bpfnb.cluster import engine
from bpfnb.cluster.gather import LABELS, labelled
from bpfnb.events.stream import StreamStats, cut_oldest
from bpfnb.lazy import lazy_import

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

__all__ = ["ClusterStream"]

_COUNTS = ("received", "lost", "dropped", "discarded", "kernel_lost")


class Caller(Protocol):
    """What a cluster stream calls its engines through: its object."""

    @property
    def closed(self) -> bool: ...

    def host_of(self, engine: int) -> str: ...

    def call(self, func: Any, *args: Any, step: str = "", wait: float = 0.0) -> dict[int, Any]: ...

    async def call_async(
        self, func: Any, *args: Any, step: str = "", wait: float = 0.0
    ) -> dict[int, Any]: ...


class ClusterStream(Closing):
    """Events of one perf or ring buffer map of every engine.

    ``poll()`` gathers what arrived (``poll_async()`` awaits it), ``to_frame()``/``tail()`` show
    it with ``host`` and ``engine`` columns first, ``stats`` adds up every engine's counts and
    ``per_host`` gives them one row per engine.
    """

    label_columns = LABELS

    def __init__(self, owner: Caller, name: str, key: str, maxlen: int, kind: str) -> None:
        self.owner = owner
        self.name = name
        self.key = key
        self.maxlen = maxlen
        self.kind = kind
        self._frames: deque[pd.DataFrame] = deque()
        self._rows = 0
        self._received_here = 0
        self._discarded_here = 0
        self._stats: dict[int, StreamStats] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed or self.owner.closed

    def poll(self, timeout: float = 0) -> int:
        """Gather what every engine received; each waits up to ``timeout`` s for its first
        events. Returns how many arrived."""
        if self.closed:
            return 0
        answers = self.owner.call(engine.poll_stream, self.key, timeout, step="poll", wait=timeout)
        return self._take(answers)

    async def poll_async(self, timeout: float = 0) -> int:
        """:meth:`poll`, awaited: the loop runs while the engines answer."""
        if self.closed:
            return 0
        answers = await self.owner.call_async(
            engine.poll_stream, self.key, timeout, step="poll", wait=timeout
        )
        return self._take(answers)

    def _take(self, answers: dict[int, Any]) -> int:
        parts = []
        for eid in sorted(answers):
            frame, stats = answers[eid]
            self._stats[eid] = stats
            if len(frame):
                parts.append((self.owner.host_of(eid), eid, frame))
        if not parts:
            return 0
        batch = labelled(parts)
        self._frames.append(batch)
        self._rows += len(batch)
        self._received_here += len(batch)
        cut = cut_oldest(self._frames, self._rows, self.maxlen)
        self._rows -= cut
        self._discarded_here += cut
        return len(batch)

    def to_frame(self) -> pd.DataFrame:
        """The kept events, oldest first, numbered in the order they were gathered."""
        if not self._frames:
            frame = labelled([])
        else:
            frame = pd.concat(list(self._frames), ignore_index=True)
            self._frames = deque([frame])
        first = self._received_here - self._rows
        frame.index = pd.RangeIndex(first, first + len(frame))
        return frame

    def tail(self, n: int = 10) -> pd.DataFrame:
        """The newest ``n`` events."""
        frame = self.to_frame()
        return frame.iloc[max(len(frame) - n, 0) :]

    def __len__(self) -> int:
        return self._rows

    @property
    def stats(self) -> StreamStats:
        """Every engine's counts added up; ``lost``/``dropped`` are None when an engine's
        program does not count them. ``discarded`` includes rows let go here by ``maxlen``."""
        total = StreamStats(0, 0, 0, self._discarded_here, 0)
        for stats in self._stats.values():
            total.received += stats.received
            total.discarded += stats.discarded
            total.kernel_lost += stats.kernel_lost
            total.lost = _add(total.lost, stats.lost)
            total.dropped = _add(total.dropped, stats.dropped)
        return total

    @property
    def per_host(self) -> pd.DataFrame:
        """One row per engine: ``host``, ``engine`` and its counts as of the last poll."""
        rows = [
            (self.owner.host_of(eid), eid, *(getattr(stats, c) for c in _COUNTS))
            for eid, stats in sorted(self._stats.items())
        ]
        return pd.DataFrame(rows, columns=[*LABELS, *_COUNTS])

    def close(self) -> None:
        """Close the stream on every engine; the rows gathered here stay readable."""
        if self._closed:
            return
        self._closed = True
        if not self.owner.closed:
            self.owner.call(engine.close_stream, self.key, step="close stream")

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"ClusterStream {self.name!r} ({self.kind}, {state}): {self._rows} of max "
            f"{self.maxlen} rows from {len(self._stats)} engine(s); {self.stats!r}"
        )

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(repr(self))}</pre>" + self.per_host.to_html(index=False)


def _add(total: int | None, count: int | None) -> int | None:
    return None if total is None or count is None else total + count
