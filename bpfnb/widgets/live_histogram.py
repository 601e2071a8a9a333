"""``LiveHistogram``: a log2 or linear histogram map drawn as bars that fill in while it runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from bpfnb.frames import UNITS, bucket_label, unit_of
from bpfnb.widgets._html import bars_html
from bpfnb.widgets.view import LiveView

__all__ = ["LiveHistogram"]

KINDS = ("log2", "linear")


class LiveHistogram(LiveView):
    """Bars of ``map.to_histogram(kind)`` with bcc-style bucket labels (``4 -> 7``), or
    human ones with a ``unit`` (``"ns"``, ``"us"``, ``"ms"``, ``"bytes"``: ``1 µs – 2 µs``).

    The bars show the counts since the view started (:meth:`reset` starts again); with
    ``per_interval=True`` they show the counts of the last refresh interval instead.
    :attr:`data` has one row per shown slot: ``range`` (its label), ``low``, ``high``, ``count``
    (since start), ``interval`` (since the previous refresh) and ``total`` (all the map holds).
    Buckets outside the first and last non-empty one are left out, as bcc does.
    """

    def __init__(
        self,
        map: Any,
        kind: str = "log2",
        *,
        unit: str | None = None,
        per_interval: bool = False,
        interval: float = 1.0,
        autostart: bool = True,
        owner: Any = None,
        close_source: bool = False,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if unit is not None and unit_of(unit) is None:
            raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
        self.kind = kind
        self.unit = unit_of(unit)
        self.per_interval = per_interval
        self._baseline: Slots | None = None
        self._previous: Slots | None = None
        super().__init__(
            map,
            interval=interval,
            autostart=autostart,
            owner=owner,
            close_source=close_source,
        )

    def _extra_controls(self) -> list[widgets.Widget]:
        self._per_interval_box = widgets.Checkbox(
            value=self.per_interval,
            description="per interval",
            indent=False,
            layout=widgets.Layout(width="110px"),
        )
        self._per_interval_box.observe(self._on_per_interval, names="value")
        return [self._per_interval_box]

    def _on_per_interval(self, change: dict[str, Any]) -> None:
        # Redraw what was read last: re-reading now would shorten the current interval.
        self.per_interval = bool(change["new"])
        if not self.closed:
            self._redraw()

    def reset(self) -> None:
        """Count from now on: the bars start again from zero at the next refresh."""
        self._baseline = None
        self._previous = None

    def _options(self) -> list[str]:
        parts = []
        parts.append(f"kind={self.kind!r}")
        if self.unit:
            parts.append(f"unit={self.unit!r}")
        if self.per_interval:
            parts.append("per_interval=True")
        return parts

    def _read(self) -> tuple[str, dict[str, Any]]:
        return ("to_histogram", {"kind": self.kind})

    def _compute(self, histogram: Any) -> pd.DataFrame:
        slots = Slots.of(histogram, self.kind)
        if self._baseline is None:
            self._baseline = slots
            self._previous = slots
        assert self._previous is not None
        since_start = slots.counts - self._baseline.counts_at(slots.low)
        per_interval = slots.counts - self._previous.counts_at(slots.low)
        self._previous = slots
        shown = np.flatnonzero(since_start)
        rows = slice(shown[0], shown[-1] + 1) if len(shown) else slice(0, 0)
        low, high = slots.low[rows], slots.high[rows]
        return pd.DataFrame(
            {
                "range": labels(low, high, self.kind, self.unit),
                "low": low,
                "high": high,
                "count": since_start[rows],
                "interval": per_interval[rows],
                "total": slots.counts[rows],
            }
        )

    def _draw(self, data: pd.DataFrame) -> str:
        column = "interval" if self.per_interval else "count"
        title = "count per interval" if self.per_interval else "count since the view started"
        return bars_html(list(data["range"]), data[column].to_numpy(), title=title)


@dataclass(frozen=True)
class Slots:
    """A histogram as arrays sorted by slot: ``low``/``high`` bounds and ``counts``."""

    low: np.ndarray
    high: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, histogram: Any, kind: str) -> Slots:
        """From what ``Map.to_histogram()`` gave: a DataFrame with ``low``, ``high`` and ``count``
        columns (a sectioned histogram's sections are summed), or one count per slot index."""
        if not isinstance(histogram, pd.DataFrame):
            counts = np.asarray(histogram, dtype=np.int64).ravel()
            low, high = bucket_bounds(len(counts), kind)
            return cls(low, high, counts)
        missing = {"low", "high", "count"} - set(histogram.columns)
        if missing:
            raise ValueError(
                f"histogram lacks columns {sorted(missing)}: {list(histogram.columns)}"
            )
        low = histogram["low"].to_numpy().astype(np.uint64)
        high = histogram["high"].to_numpy().astype(np.uint64)
        counts = histogram["count"].to_numpy().astype(np.int64)
        # numpy rather than a pandas groupby: this runs at every refresh.
        unique, first, inverse = np.unique(low, return_index=True, return_inverse=True)
        if len(unique) != len(low):
            counts = np.bincount(inverse, weights=counts, minlength=len(unique)).astype(np.int64)
        elif np.all(low[:-1] <= low[1:]):
            return cls(low, high, counts)
        else:
            counts = counts[np.argsort(low, kind="stable")]
        return cls(unique, high[first], counts)

    def counts_at(self, low: np.ndarray) -> np.ndarray:
        """The counts of the slots starting at ``low`` (0 for slots this histogram lacks), so
        a histogram that lists only its non-empty slots compares with an earlier one."""
        if np.array_equal(low, self.low):
            return self.counts
        if not len(self.low):
            return np.zeros(len(low), dtype=np.int64)
        at = np.minimum(np.searchsorted(self.low, low), len(self.low) - 1)
        return np.where(self.low[at] == low, self.counts[at], 0)


def bucket_bounds(n: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Value bounds of slots ``0..n-1``: bcc's ``bpf_log2l`` slots, or one value each."""
    index = np.arange(n, dtype=np.uint64)
    if kind == "linear":
        return index, index.copy()
    # Slot i > 0 holds values [2**(i-1), 2**i - 1]; slot 0 holds 0. Slot 64 ends at 2**64 - 1,
    # which numpy cannot compute as a shift, so it is set directly.
    one = np.uint64(1)
    shift = np.minimum(index, np.uint64(63))
    low = np.where(index > 0, one << (np.maximum(index, one) - one), np.uint64(0))
    high = np.where(index > 0, (one << shift) - one, np.uint64(0))
    high[index >= 64] = np.iinfo(np.uint64).max
    return low.astype(np.uint64), high.astype(np.uint64)


def labels(low: np.ndarray, high: np.ndarray, kind: str, unit: str | None = None) -> list[str]:
    """Bucket labels: bcc's (``low -> high`` for log2, ``0 -> 1`` for the first; the value for
    linear), or human ones in ``unit``."""
    return [bucket_label(lo, hi, unit, kind) for lo, hi in zip(low.tolist(), high.tolist())]
