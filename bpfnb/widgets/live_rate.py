"""``LiveRate``: counts per second over time, one line per key, from a map or an event stream."""

from __future__ import annotations

import heapq
import html
import time
from collections import deque
from typing import Any, Union

import numpy as np
import pandas as pd

from bpfnb.widgets._columns import key_columns, value_column
from bpfnb.widgets._html import empty_html
from bpfnb.widgets.view import LiveView

__all__ = ["LiveRate"]

# matplotlib's tab10, so a key has the same colour here as in bpfnb.plots figures.
COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 560, 180, 56, 20, 8


class LiveRate(LiveView):
    """The rate of change of a map's counts (or a stream's events per second), as lines.

    For a map, each key's value (``key`` names the column(s) to group by; default: the map's
    key) is differenced between refreshes and divided by the time between them. For an event
    stream, ``key=None`` gives one line of events/s and ``key="comm"`` one line per value of that
    event field. The last ``window`` seconds are kept; the ``top`` keys with the most counts in
    that window are drawn. :attr:`data` is indexed by ``time`` (seconds since the view started)
    with one column of rates per drawn key.
    """

    def __init__(
        self,
        source: Any,
        key: Union[str, list[str], None] = None,
        window: float = 60.0,
        *,
        top: int = 5,
        interval: float = 1.0,
        autostart: bool = True,
        owner: Any = None,
        close_source: bool = False,
    ) -> None:
        if window <= 0:
            raise ValueError(f"window must be positive, got {window!r}")
        if top <= 0:
            raise ValueError(f"top must be positive, got {top!r}")
        self.key = key
        self.window = float(window)
        self.top = top
        self._is_stream = hasattr(source, "tail") and hasattr(source, "stats")
        self._started = time.monotonic()
        self._last_time: float | None = None
        self._last_counts: dict[str, float] = {}
        self._last_received = 0
        self._history: deque[tuple[float, dict[str, float]]] = deque()
        self._window_sum: dict[str, float] = {}  # per key: its counts/s summed over the window
        super().__init__(
            source,
            interval=interval,
            autostart=autostart,
            owner=owner,
            close_source=close_source,
        )

    def _options(self) -> list[str]:
        parts = []
        if self.key is not None:
            parts.append(f"key={self.key!r}")
        parts.append(f"window={self.window:g}")
        return parts

    def _read(self) -> tuple[str, dict[str, Any]] | None:
        if not self._is_stream:
            return ("to_frame", {})
        # A stream is polled first (without waiting) so that new records are read in.
        if hasattr(self.source, "poll") and not getattr(self.source, "closed", False):
            return ("poll", {"timeout": 0})
        return None

    def _compute(self, raw: Any) -> pd.DataFrame:
        # Plain dicts of the changed keys only: with a thousand keys, pandas per refresh costs
        # tens of milliseconds, and most keys do not change between two refreshes.
        now = time.monotonic()
        counts = self._stream_counts() if self._is_stream else self._map_counts(raw)
        if self._last_time is not None and now > self._last_time:
            elapsed = now - self._last_time
            if self._is_stream:  # counts of new events already
                rates = {label: n / elapsed for label, n in counts.items() if n}
            else:  # running totals: difference them (a key new since then counts from zero)
                last = self._last_counts
                rates = {
                    label: change / elapsed
                    for label, value in counts.items()
                    if (change := value - last.get(label, 0.0))
                }
            self._remember(now - self._started, rates)
        self._last_time = now
        if not self._is_stream:
            self._last_counts = counts
        self._forget_before(now - self._started - self.window)
        return self._frame()

    def _remember(self, when: float, rates: dict[str, float]) -> None:
        self._history.append((when, rates))
        for label, rate in rates.items():
            self._window_sum[label] = self._window_sum.get(label, 0.0) + abs(rate)

    def _forget_before(self, horizon: float) -> None:
        while self._history and self._history[0][0] < horizon:
            _, rates = self._history.popleft()
            for label, rate in rates.items():
                left = self._window_sum[label] - abs(rate)
                if left > 1e-9:
                    self._window_sum[label] = left
                else:
                    del self._window_sum[label]

    def _map_counts(self, frame: pd.DataFrame) -> dict[str, float]:
        keys = self._key_list() or key_columns(self.source, frame)
        value = value_column(frame, keys)
        if value is None or frame.empty:
            return {}
        labels = _labels(frame, keys)
        values = frame[value].to_numpy(dtype=np.float64).tolist()
        counts = dict(zip(labels, values))
        if len(counts) != len(labels):  # ``key`` names part of the map's key: sum per label
            counts = {}
            for label, count in zip(labels, values):
                counts[label] = counts.get(label, 0.0) + count
        return counts

    def _stream_counts(self) -> dict[str, float]:
        # New events since the last refresh: the received counter is exact even when the
        # stream's bounded buffer has already let go of some rows.
        received = int(self.source.stats.received)
        new, self._last_received = max(received - self._last_received, 0), received
        if self._last_time is None:
            return {}
        keys = self._key_list()
        if not keys:
            return {"events": float(new)}
        if new == 0:
            return {}
        rows = self.source.tail(new)
        counts = pd.Series(_labels(rows, keys)).value_counts()
        return {str(k): float(v) for k, v in counts.items()}

    def _key_list(self) -> list[str]:
        if self.key is None:
            return []
        return [self.key] if isinstance(self.key, str) else list(self.key)

    def _frame(self) -> pd.DataFrame:
        if not self._history:
            return pd.DataFrame(index=pd.Index([], name="time", dtype=np.float64))
        ranked = heapq.nlargest(self.top, self._window_sum.items(), key=lambda item: item[1])
        chosen = [label for label, _ in ranked]
        rows = [[rates.get(label, 0.0) for label in chosen] for _, rates in self._history]
        times = pd.Index([t for t, _ in self._history], name="time", dtype=np.float64)
        return pd.DataFrame(rows, index=times, columns=chosen, dtype=np.float64)

    def _draw(self, data: pd.DataFrame) -> str:
        if not len(data.index):
            return empty_html("waiting for counts: a rate needs two refreshes")
        if not len(data.columns):
            return empty_html(f"no counts changed in the last {self.window:g} s")
        return svg_lines(data, self.window) + _legend(data)


def _labels(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise KeyError(f"key {missing!r}: no such column in {list(frame.columns)}")
    if len(keys) == 1:
        return [str(v) for v in frame[keys[0]].tolist()]
    return [" ".join(map(str, row)) for row in zip(*(frame[k].tolist() for k in keys))]


def svg_lines(data: pd.DataFrame, window: float) -> str:
    """An SVG line chart: time along x (the last ``window`` seconds), rate along y."""
    times = data.index.to_numpy(dtype=np.float64)
    right = float(times[-1])
    left = right - window
    peak = float(np.nanmax(data.to_numpy())) if data.size else 0.0
    peak = peak * 1.1 if peak > 0 else 1.0
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    xs = LEFT + (times - left) / window * plot_w
    lines = []
    for n, column in enumerate(data.columns):
        ys = TOP + plot_h - data[column].to_numpy(dtype=np.float64) / peak * plot_h
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs.tolist(), ys.tolist()))
        color = COLORS[n % len(COLORS)]
        lines.append(
            f'<polyline class="bpfnb-line" fill="none" stroke="{color}" stroke-width="1.5" '
            f'points="{points}"/>'
        )
    axis = (
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}" '
        f'stroke="#999"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" '
        f'stroke="#999"/>'
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end" font-size="10">'
        f"{compact(peak)}/s</text>"
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end" font-size="10">0</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 4}" font-size="10">-{window:g} s</text>'
        f'<text x="{WIDTH - 8}" y="{HEIGHT - 4}" text-anchor="end" font-size="10">now</text>'
    )
    return (
        # Scales down to the space it gets (in an HBox beside another view) instead of clipping.
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" style="width:100%;max-width:{WIDTH}px">'
        f"<clipPath id='bpfnb-clip'><rect x='{LEFT}' y='0' width='{plot_w}' height='{HEIGHT}'/>"
        f"</clipPath>{axis}<g clip-path='url(#bpfnb-clip)'>{''.join(lines)}</g></svg>"
    )


def compact(value: float) -> str:
    """A short number for an axis or legend: ``950``, ``21.9k``, ``3.2M``."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _legend(data: pd.DataFrame) -> str:
    latest = data.iloc[-1]
    items = [
        f'<span style="color:{COLORS[n % len(COLORS)]}">&#9632;</span> '
        f"{html.escape(str(column))}: {compact(latest[column])}/s"
        for n, column in enumerate(data.columns)
    ]
    return "<div>" + " &nbsp; ".join(items) + "</div>"
