"""bpftrace's JSON map prints (``-f json``) as DataFrames.

bpftrace prints each map as one line: ``{"type": "map"|"hist"|"stats", "data": {"@name": ...}}``.
A scalar map's data is its value; a keyed map's is an object from key to value, where a map
with several keys joins them with commas (``"1234,bash"``). A histogram is a list of buckets
``{"min": lo, "max": hi, "count": n}``: the negative bucket of ``hist()`` and the underflow
bucket of ``lhist()`` lack ``min``, ``lhist()``'s overflow bucket lacks ``max``.

Frames follow :meth:`bpfnb.maps.Map.to_frame` and :meth:`~bpfnb.maps.Map.to_histogram`: keys are
``key`` (or ``key.0``, ``key.1``… for several), values ``value`` (``count``/``average``/
``total`` for ``stats()``); a histogram has ``slot``, ``low``, ``high``, ``count``, after a
``key`` section column when the map has keys.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from bpfnb.bpftrace.script import MapInfo
from bpfnb.lazy import lazy_import

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

__all__ = [
    "STATS_FIELDS",
    "histogram_frame",
    "histogram_kind",
    "key_columns",
    "value_frame",
]

STATS_FIELDS = ("count", "average", "total")
HISTOGRAM_COLUMNS = ("slot", "low", "high", "count")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INTEGER = re.compile(r"^-?\d+$")


def _typed(values: list[Any]) -> list[Any]:
    # Keys arrive as text: a column whose every entry is an integer becomes integers.
    if values and all(isinstance(v, str) and _INTEGER.match(v) for v in values):
        return [int(v) for v in values]
    return values


def key_columns(keys: list[str], count: int) -> dict[str, list[Any]]:
    """Columns for the printed keys of a map with ``count`` keys (0: a scalar map).

    Several keys come joined with commas; when a key's own text holds a comma the split is
    ambiguous, and the whole joined text stays in one ``key`` column.
    """
    if count == 0:
        return {}
    if count == 1:
        return {"key": _typed(list(keys))}
    parts = [key.split(",") for key in keys]
    if any(len(p) != count for p in parts):
        return {"key": list(keys)}
    return {f"key.{i}": _typed([p[i] for p in parts]) for i in range(count)}


def _is_stats(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == set(STATS_FIELDS)


def value_frame(data: Any, info: MapInfo, kind: str = "map") -> pd.DataFrame:
    """A ``map`` or ``stats`` print as a frame (``data`` None: the map is empty)."""
    keys = info.keys or 0
    stats = info.function == "stats" or (info.function == "" and kind == "stats" and _stats(data))
    value_names = list(STATS_FIELDS) if stats else ["value"]
    if data is None:
        names = ["key"] if keys == 1 else [f"key.{i}" for i in range(keys)] if keys else []
        return pd.DataFrame({name: [] for name in [*names, *value_names]})
    if keys == 0:
        rows = [data]
        columns: dict[str, list[Any]] = {}
    else:
        rows = list(data.values())
        columns = key_columns(list(data), keys)
    if stats:
        for name in STATS_FIELDS:
            columns[name] = [row[name] for row in rows]
    else:
        columns["value"] = rows
    return pd.DataFrame(columns)


def _stats(data: Any) -> bool:
    if _is_stats(data):
        return True
    return isinstance(data, dict) and bool(data) and all(_is_stats(v) for v in data.values())


def histogram_kind(info: MapInfo, data: Any = None) -> str:
    """``"log2"`` for ``hist()``, ``"linear"`` for ``lhist()``; from the buckets' shape when
    the program does not say."""
    if info.function == "hist":
        return "log2"
    if info.function == "lhist":
        return "linear"
    lists = [data] if isinstance(data, list) else list((data or {}).values())
    bounded = [b for buckets in lists for b in buckets if "min" in b and "max" in b]
    for bucket in bounded:
        low, high = bucket["min"], bucket["max"]
        power = low > 0 and low & (low - 1) == 0
        if not ((low == high and low in (0, 1)) or (power and high == 2 * low - 1)):
            return "linear"
    return "log2"


def _buckets(entries: list[dict[str, int]], kind: str) -> list[tuple[int, int, int, int]]:
    # (slot, low, high, count) of each printed bucket.
    step = next(
        (
            b["max"] - b["min"] + 1
            for b in entries
            if "min" in b and "max" in b and kind == "linear"
        ),
        1,
    )
    out: list[tuple[int, int, int, int]] = []
    previous_high: int | None = None
    for bucket in entries:
        count = int(bucket.get("count", 0))
        low = bucket.get("min")
        high = bucket.get("max")
        if low is None:  # below the first bucket: hist()'s negatives, lhist()'s underflow
            low, high = _INT64_MIN, int(high if high is not None else -1)
            slot = -1 if kind == "log2" else high + 1 - step
        elif high is None:  # lhist()'s overflow bucket
            high = _INT64_MAX
            slot = int(low)
        else:
            if previous_high is not None and (low > high or low <= previous_high):
                # bpftrace 0.17 prints the bounds of buckets at or above 2**32 in 32 bits: all
                # that is known is that the values lie above the previous bucket.
                low, high = previous_high + 1, _INT64_MAX
            slot = int(low).bit_length() if kind == "log2" else int(low)
        out.append((slot, int(low), int(high), count))
        previous_high = int(high)
    return out


def _section(entries: list[dict[str, int]], kind: str) -> pd.DataFrame:
    rows = _buckets(entries, kind)
    return pd.DataFrame(
        {
            "slot": np.array([r[0] for r in rows], dtype=np.int64),
            "low": np.array([r[1] for r in rows], dtype=np.int64),
            "high": np.array([r[2] for r in rows], dtype=np.int64),
            "count": np.array([r[3] for r in rows], dtype=np.uint64),
        }
    )


def histogram_frame(data: Any, info: MapInfo, kind: str | None = None) -> pd.DataFrame:
    """A ``hist``/``lhist`` print as a histogram frame (``data`` None: the map is empty).

    A keyed histogram gets a ``key`` section column first (a tuple for several keys), one
    histogram per key, sections in key order.
    """
    kind = kind or histogram_kind(info, data)
    keys = info.keys or 0
    if data is None or (keys and not data):
        frame = _section([], kind)
        if keys:
            frame.insert(0, "key", pd.Series([], dtype=object))
        return frame
    if keys == 0:
        return _section(data, kind)
    columns = key_columns(list(data), keys)
    # One key labels its sections by value, several by tuple.
    labels = next(iter(columns.values())) if len(columns) == 1 else list(zip(*columns.values()))
    frames = []
    for label, entries in sorted(zip(labels, data.values()), key=lambda item: _order(item[0])):
        section = _section(entries, kind)
        section.insert(0, "key", pd.Series([label] * len(section), dtype=object))
        frames.append(section)
    return pd.concat(frames, ignore_index=True)


def _order(label: Any) -> tuple[Any, ...]:
    # Sort numbers numerically and text as text, without comparing the two.
    parts = label if isinstance(label, tuple) else (label,)
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in parts)
