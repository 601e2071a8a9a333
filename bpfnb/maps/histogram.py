"""Histogram maps (bcc's ``BPF_HISTOGRAM`` and the like) as frames and as bcc's ASCII art.

A log2 histogram counts ``bpf_log2l(v)`` per slot: slot 1 holds 0 and 1, slot ``k >= 2`` holds
``[2**(k-1), 2**k - 1]``. A linear histogram's slot is the value itself. A struct key adds a
bucket field (one histogram per bucket) in front of the slot field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from bpfnb.errors import MapError
from bpfnb.frames import UNITS, Layout, bucket_label, columns, unit_of
from bpfnb.frames.table import HIDDEN_PREFIXES
from bpfnb.lazy import lazy_import
from bpfnb.maps.snapshot import Snapshot

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

__all__ = ["bounds", "histogram_frame", "format_histogram", "print_histogram"]

_STARS = 40


class Counts(Protocol):
    """A map of counts, as a histogram reads it (any :class:`bpfnb.Map`)."""

    name: str
    per_cpu: bool
    key_type: Layout

    def snapshot(self) -> Snapshot: ...


def bounds(slots: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest value counted in each slot."""
    slots = slots.astype(np.uint64)
    if kind == "linear":
        return slots, slots.copy()
    if kind != "log2":
        raise MapError(f"histogram kind must be 'log2' or 'linear', not {kind!r}")
    one = np.uint64(1)
    shift = np.minimum(slots, np.uint64(63))
    high = np.where(slots >= 64, np.uint64(2**64 - 1), (one << shift) - one)
    low = np.where(slots >= 2, one << (np.maximum(slots, one) - one), np.uint64(0))
    return low.astype(np.uint64), high.astype(np.uint64)


def _counts(m: Counts) -> tuple[np.ndarray, np.ndarray]:
    snap = m.snapshot()
    values = snap.values["v"].sum(axis=1) if m.per_cpu else snap.values
    if values.dtype.names:
        names = [n for n in values.dtype.names if not n.startswith(HIDDEN_PREFIXES)]
        if len(names) != 1:
            raise MapError(f"{m.name}: a histogram's value must be one counter, not {names}")
        values = values[names[0]]
    if values.dtype.kind not in "iu" or values.ndim != 1:
        raise MapError(f"{m.name}: a histogram's value must be an integer count")
    return values, snap.keys


def histogram_frame(
    m: Counts,
    kind: str = "log2",
    bucket: str | None = None,
    slot: str | None = None,
    unit: str | None = None,
) -> pd.DataFrame:
    """One row per slot, from the first slot to the last non-empty one (per bucket); with a
    ``unit`` (``"ns"``, ``"us"``, ``"ms"``, ``"bytes"``) a ``range`` column labels each."""
    counts, keys = _counts(m)
    bucket_values: list[Any] | None = None
    if keys.dtype.names:
        cols = columns(keys, m.key_type)
        names = list(cols)
        bucket = bucket or names[0]
        slot = slot or next((n for n in names if n != bucket), None)
        if bucket not in cols or slot not in cols:
            raise MapError(f"{m.name}: key fields are {names}; pick bucket= and slot=")
        slots = np.asarray(cols[slot])
        bucket_values = list(cols[bucket])
    elif keys.dtype.kind in "iu":
        slots = keys
    else:
        raise MapError(f"{m.name}: a histogram's key must be an integer slot or a struct")
    if slots.dtype.kind not in "iu":
        raise MapError(f"{m.name}: the slot field must be an integer")
    first = 1 if kind == "log2" else 0
    frames = []
    sections: dict[Any, list[int]] = {}
    for i, key in enumerate(bucket_values if bucket_values is not None else [None] * len(slots)):
        sections.setdefault(key, []).append(i)
    for key in _sorted(sections):
        rows = np.array(sections[key], dtype=np.intp)
        dense = _dense(slots[rows].astype(np.int64), counts[rows], first)
        if bucket_values is not None:
            dense.insert(0, bucket, [key] * len(dense))
        frames.append(dense)
    if not frames:
        frames.append(_dense(np.zeros(0, np.int64), np.zeros(0, np.uint64), first))
    out = pd.concat(frames, ignore_index=True)
    low, high = bounds(out["slot"].to_numpy(), kind)
    out.insert(out.columns.get_loc("slot") + 1, "low", low)
    out.insert(out.columns.get_loc("low") + 1, "high", high)
    if unit is not None:
        known = _unit(unit)
        ranges = [bucket_label(lo, hi, known, kind) for lo, hi in zip(low.tolist(), high.tolist())]
        out.insert(out.columns.get_loc("slot") + 1, "range", ranges)
    return out


def _unit(unit: str) -> str:
    known = unit_of(unit)
    if known is None:
        raise MapError(f"unit must be one of {', '.join(UNITS)} (or bcc's nsecs, usecs, msecs)")
    return known


def _sorted(keys: dict[Any, list[int]]) -> list[Any]:
    try:
        return sorted(keys)
    except TypeError:
        return list(keys)


def _dense(slots: np.ndarray, counts: np.ndarray, first: int) -> pd.DataFrame:
    nonzero = slots[(counts > 0) & (slots >= 0)]
    if len(nonzero) == 0:
        return pd.DataFrame({"slot": np.zeros(0, np.int64), "count": np.zeros(0, np.uint64)})
    start = min(first, int(nonzero.min()))
    table = np.zeros(int(nonzero.max()) - start + 1, dtype=np.uint64)
    keep = (slots >= start) & (slots - start < len(table))
    np.add.at(table, slots[keep] - start, counts[keep].astype(np.uint64))
    return pd.DataFrame({"slot": np.arange(start, start + len(table)), "count": table})


def _stars(count: int, top: int, width: int) -> str:
    return "*" * min(width, (width * count) // top) if top else ""


def _format_one(
    rows: pd.DataFrame, kind: str, val_type: str, strip_leading_zero: bool, unit: str | None
) -> list[str]:
    if unit is not None:
        return _format_labelled(rows, kind, val_type, strip_leading_zero, unit)
    by_slot = dict(zip(rows["slot"].tolist(), rows["count"].tolist(), strict=True))
    nonzero = [s for s, c in by_slot.items() if c > 0]
    if not nonzero:
        return []
    last, top = max(nonzero), max(by_slot.values())
    lines: list[str] = []
    if kind == "linear":
        lines.append(f"     {val_type:<13} : count     distribution")
        slots = range(0, last + 1)
    else:
        wide = last > 32
        label = f"{val_type:<29}" if wide else f"{val_type:<19}"
        lines.append(("               " if wide else "     ") + f"{label} : count     distribution")
        slots = range(1, last + 1)
    stars = _STARS // 2 if kind == "log2" and last > 32 else _STARS
    skipping = strip_leading_zero
    for slot in slots:
        count = int(by_slot.get(slot, 0))
        if skipping and not count:
            continue
        skipping = False
        bar = f"|{_stars(count, top, stars):<{stars}}|"
        if kind == "linear":
            lines.append(f"        {slot:<10} : {count:<8} {bar}")
        else:
            low, high = (1 << slot) >> 1, (1 << slot) - 1
            low = low - 1 if low == high else low
            width = 20 if last > 32 else 10
            lines.append(f"{low:>{width}} -> {high:<{width}} : {count:<8} {bar}")
    return lines


def _format_labelled(
    rows: pd.DataFrame, kind: str, val_type: str, strip_leading_zero: bool, unit: str
) -> list[str]:
    # bcc's layout with human bucket labels (512 ms – 1.07 s) instead of raw bounds.
    counts = rows["count"].tolist()
    if not any(counts):
        return []
    last = max(i for i, c in enumerate(counts) if c)
    first = next(i for i, c in enumerate(counts) if c) if strip_leading_zero else 0
    low, high = rows["low"].tolist(), rows["high"].tolist()
    labels = [bucket_label(lo, hi, unit, kind) for lo, hi in zip(low, high)][first : last + 1]
    width = max(len(val_type), *(len(label) for label in labels))
    top = max(counts)
    lines = [f"{val_type:>{width}} : count     distribution"]
    for label, count in zip(labels, counts[first : last + 1]):
        lines.append(f"{label:>{width}} : {count:<8} |{_stars(count, top, _STARS):<{_STARS}}|")
    return lines


def format_histogram(
    frame: pd.DataFrame,
    kind: str = "log2",
    val_type: str = "value",
    section_header: str = "Bucket ptr",
    section_print_fn: Callable[[Any], str] | None = None,
    strip_leading_zero: bool = False,
    unit: str | None = None,
) -> str:
    """bcc's ``print_log2_hist``/``print_linear_hist`` text for a :func:`histogram_frame`;
    with a ``unit`` the buckets read as times or sizes (``1 µs – 2 µs``)."""
    known = _unit(unit) if unit is not None else None
    bucket = frame.columns[0] if frame.columns[0] != "slot" else None
    lines: list[str] = []
    if bucket is None:
        lines += _format_one(frame, kind, val_type, strip_leading_zero, known)
    else:
        for key, rows in frame.groupby(bucket, sort=False):
            shown = section_print_fn(key) if section_print_fn else repr(key)
            lines += ["", f"{section_header} = {shown}"]
            lines += _format_one(rows, kind, val_type, strip_leading_zero, known)
    return "\n".join(lines)


def print_histogram(
    frame: pd.DataFrame,
    kind: str = "log2",
    val_type: str = "value",
    section_header: str = "Bucket ptr",
    section_print_fn: Callable[[Any], str] | None = None,
    strip_leading_zero: bool = False,
    unit: str | None = None,
) -> None:
    """Print :func:`format_histogram`'s text."""
    text = format_histogram(
        frame, kind, val_type, section_header, section_print_fn, strip_leading_zero, unit
    )
    if text:
        print(text)
