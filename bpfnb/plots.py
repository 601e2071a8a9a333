"""Matplotlib figures for map data: log2 and linear histograms, top-N bars, flame graphs.

Each function returns a ``matplotlib.figure.Figure``: a notebook shows it inline, a script can
``savefig`` it, and nothing needs a display (figures are closed in pyplot right away, so a
notebook shows each once, as the cell's value).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bpfnb.frames import format_value, unit_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["flamegraph", "histogram", "linear_histogram", "power_of_two_label", "top"]

_BAR = "#4c72b0"
_MAX_TICKS = 14


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    plt.close(fig)  # the caller owns it; pyplot must not show it a second time
    return fig, ax


def power_of_two_label(value: int) -> str:
    """``1024`` → ``1K``, ``3 << 20`` → ``3M``: binary prefixes, as bucket bounds read best."""
    for shift, suffix in ((60, "E"), (50, "P"), (40, "T"), (30, "G"), (20, "M"), (10, "K")):
        if value >= 1 << shift and value % (1 << shift) == 0:
            return f"{value >> shift}{suffix}"
    return str(value)


def _histogram_frame(source: Any, kind: str) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        missing = {"slot", "count"} - set(source.columns)
        if missing:
            raise ValueError(f"a histogram frame needs columns slot and count; missing {missing}")
        return source
    return source.to_histogram(kind)


def _sections(frame: pd.DataFrame) -> list[tuple[Any, pd.DataFrame]]:
    bucket = frame.columns[0] if frame.columns[0] != "slot" else None
    if bucket is None:
        return [(None, frame)]
    return [(key, rows) for key, rows in frame.groupby(bucket, sort=False)]


def histogram(
    source: Any,
    *,
    unit: str = "value",
    title: str | None = None,
    section_header: str | None = None,
) -> Figure:
    """A log2 histogram from a Map or a :meth:`Map.to_histogram` frame.

    Bars sit between power-of-two bounds on a log2 value axis, each bucket equally wide and
    labelled like bcc's ``print_log2_hist`` rows (``0``, ``2``, ``4`` … ``1K``, ``2K``); the
    first bucket holds 0 and 1. A sectioned histogram (struct key) gets one panel per section.
    """
    frame = _histogram_frame(source, "log2")
    sections = _sections(frame)
    fig, first = _figure(8, 1.2 + 2.4 * len(sections))
    axes = [first] if len(sections) == 1 else list(fig.subplots(len(sections), 1, sharex=True))
    if len(sections) > 1:
        first.remove()
    edges_seen: list[int] = []
    for ax, (key, rows) in zip(axes, sections, strict=True):
        slots = rows["slot"].to_numpy(dtype=np.int64)
        counts = rows["count"].to_numpy(dtype=np.float64)
        # Slot k covers [2**(k-1), 2**k): its bar spans k-1..k on a log2 axis.
        ax.bar(slots - 1, counts, width=1.0, align="edge", color=_BAR, edgecolor="white")
        ax.set_ylabel("count")
        if key is not None:
            ax.set_title(f"{section_header or frame.columns[0]} = {key}", fontsize="medium")
        if len(slots):
            edges_seen += [int(slots.min()) - 1, int(slots.max())]
    if edges_seen:
        low, high = max(0, min(edges_seen)), max(edges_seen)
        step = max(1, -(-(high - low) // _MAX_TICKS))
        ticks = list(range(low, high + 1, step))
        known = unit_of(unit)
        labels = [
            format_value(1 << t if t else 0, known)
            if known
            else ("0" if t == 0 else power_of_two_label(1 << t))
            for t in ticks
        ]
        for ax in axes:
            ax.set_xticks(ticks, labels)
            ax.set_xlim(low, high)
    axes[-1].set_xlabel(f"{unit} (log2 buckets)")
    if title:
        fig.suptitle(title)
    return fig


def linear_histogram(
    source: Any, *, unit: str = "value", title: str | None = None, section_header: str | None = None
) -> Figure:
    """A linear histogram (one bar per slot value) from a Map or a histogram frame."""
    frame = _histogram_frame(source, "linear")
    sections = _sections(frame)
    fig, first = _figure(8, 1.2 + 2.4 * len(sections))
    axes = [first] if len(sections) == 1 else list(fig.subplots(len(sections), 1, sharex=True))
    if len(sections) > 1:
        first.remove()
    for ax, (key, rows) in zip(axes, sections, strict=True):
        ax.bar(rows["slot"], rows["count"], width=0.9, color=_BAR)
        ax.set_ylabel("count")
        if key is not None:
            ax.set_title(f"{section_header or frame.columns[0]} = {key}", fontsize="medium")
    axes[-1].set_xlabel(unit)
    if title:
        fig.suptitle(title)
    return fig


def top(
    frame: pd.DataFrame,
    by: str,
    n: int = 10,
    *,
    label: str | Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Horizontal bars of the ``n`` rows with the largest ``by``, the largest on top.

    Bars are named by the ``label`` column(s) (joined with spaces), or by the index.
    """
    if by not in frame.columns:
        raise ValueError(f"no column {by!r}; columns are {list(frame.columns)}")
    rows = frame.nlargest(n, by)
    if label is None:
        names = [str(i) for i in rows.index]
    else:
        cols = [label] if isinstance(label, str) else list(label)
        names = [" ".join(str(v) for v in values) for values in rows[cols].itertuples(False)]
    # Sized for n bars, not for however many rows there were: the same call, the same size.
    fig, ax = _figure(8, 1.0 + 0.35 * max(n, 1))
    positions = np.arange(len(rows))[::-1]
    ax.barh(positions, rows[by].to_numpy(dtype=np.float64), color=_BAR)
    ax.set_yticks(positions, names)
    ax.set_xlabel(by)
    ax.set_title(title or f"top {len(rows)} by {by}")
    return fig


def _flame_color(name: str) -> tuple[float, float, float]:
    # Warm colours, stable per function name, as in Brendan Gregg's flame graphs.
    h = zlib.crc32(name.encode())
    return (0.80 + 0.2 * ((h & 0xFF) / 255), 0.35 + 0.45 * (((h >> 8) & 0xFF) / 255), 0.15)


def flamegraph(
    stacks: pd.DataFrame,
    *,
    stack: str = "stack",
    count: str = "count",
    title: str = "flame graph",
    min_fraction: float = 0.002,
) -> Figure:
    """A flame graph (root at the bottom) of ``stacks``: one row per stack, as a tuple of
    frame names root first (see :meth:`bpfnb.maps.StackTraceMap.stacks`), with its ``count``.

    Each box's width is the share of samples whose stack passes through that frame; boxes
    narrower than ``min_fraction`` of the total are left out.
    """
    totals: dict[tuple[str, ...], float] = {}
    for frames, weight in zip(stacks[stack], stacks[count], strict=True):
        frames = tuple(frames)
        for depth in range(1, len(frames) + 1):
            totals[frames[:depth]] = totals.get(frames[:depth], 0.0) + float(weight)
    grand = float(stacks[count].sum())
    deepest = max((len(path) for path in totals), default=0)
    fig, ax = _figure(10, 1.0 + 0.28 * max(deepest, 1))
    ax.set_title(title)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(deepest, 1))
    ax.set_yticks([])
    ax.set_xlabel(f"share of {grand:g} samples")
    if not grand:
        return fig
    children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for path in totals:
        children.setdefault(path[:-1], []).append(path)
    renderer_width = fig.get_figwidth() * fig.dpi
    todo: list[tuple[tuple[str, ...], float]] = [((), 0.0)]
    while todo:
        parent, x = todo.pop()
        for path in sorted(children.get(parent, ())):
            width = totals[path] / grand
            if width >= min_fraction:
                depth = len(path) - 1
                ax.add_patch(_box(x, depth, width, _flame_color(path[-1])))
                chars = int(width * renderer_width / 7)
                if chars >= 4:
                    name = path[-1] if len(path[-1]) <= chars else path[-1][: chars - 2] + ".."
                    ax.text(x + 0.003, depth + 0.45, name, va="center", fontsize=8, clip_on=True)
                todo.append((path, x))
            x += width
    return fig


def _box(x: float, depth: int, width: float, color: tuple[float, float, float]) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, depth), width, 0.95, facecolor=color, edgecolor="white", linewidth=0.5)
