"""Plots are Figures built from frames, headless, with the bars and labels the data says."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pandas as pd
import pytest

from bpfnb import plots

matplotlib.use("Agg")


def _render(fig) -> None:
    fig.savefig(io.BytesIO(), format="png")


def test_power_of_two_labels() -> None:
    assert [plots.power_of_two_label(v) for v in (1, 512, 1024, 3 << 10, 1 << 20, 1 << 40)] == [
        "1",
        "512",
        "1K",
        "3K",
        "1M",
        "1T",
    ]
    assert plots.power_of_two_label(1000) == "1000"


def test_log2_histogram_bars_span_power_of_two_buckets() -> None:
    frame = pd.DataFrame({"slot": [1, 2, 3, 11], "count": [4, 0, 2, 9]})
    fig = plots.histogram(frame, unit="bytes")
    _render(fig)
    (ax,) = fig.axes
    bars = ax.patches
    assert [b.get_x() for b in bars] == [0, 1, 2, 10]
    assert [b.get_height() for b in bars] == [4, 0, 2, 9]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    # Bucket edges in the unit: 0 (the first holds 0 and 1), then 2, 4, ..., 1 KiB and 2 KiB.
    assert labels[:3] == ["0 B", "2 B", "4 B"] and labels[-2:] == ["1 KiB", "2 KiB"]
    assert ax.get_xlabel() == "bytes (log2 buckets)"
    plain = [t.get_text() for t in plots.histogram(frame).axes[0].get_xticklabels()]
    assert plain[:3] == ["0", "2", "4"] and plain[-2:] == ["1K", "2K"]  # no unit: bcc's


def test_sectioned_histogram_has_a_panel_per_section() -> None:
    frame = pd.DataFrame({"cpu": [0, 0, 1], "slot": [1, 2, 1], "count": [1, 2, 3]})
    fig = plots.histogram(frame)
    _render(fig)
    assert [ax.get_title() for ax in fig.axes] == ["cpu = 0", "cpu = 1"]


def test_linear_histogram() -> None:
    fig = plots.linear_histogram(pd.DataFrame({"slot": np.arange(5), "count": [0, 1, 2, 3, 4]}))
    _render(fig)
    assert [b.get_height() for b in fig.axes[0].patches] == [0, 1, 2, 3, 4]


def test_top_keeps_the_n_largest_largest_first() -> None:
    frame = pd.DataFrame({"comm": list("abcdef"), "pid": range(6), "count": [5, 1, 9, 3, 7, 2]})
    fig = plots.top(frame, "count", 3, label=["comm", "pid"])
    _render(fig)
    ax = fig.axes[0]
    by_y = sorted(ax.patches, key=lambda b: -b.get_y())
    assert [b.get_width() for b in by_y] == [9, 7, 5]
    ticks = zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels()), strict=True)
    assert [name for _, name in sorted(ticks, reverse=True)] == ["c 2", "e 4", "a 0"]
    with pytest.raises(ValueError, match="no column"):
        plots.top(frame, "bytes")


def test_flamegraph_widths_are_shares_of_samples() -> None:
    stacks = pd.DataFrame(
        {
            "stack": [("main", "read"), ("main", "write"), ("main", "read"), ("idle",)],
            "count": [2, 1, 3, 4],
        }
    )
    fig = plots.flamegraph(stacks)
    _render(fig)
    boxes = {
        (round(p.get_x(), 6), int(p.get_y())): round(p.get_width(), 6) for p in fig.axes[0].patches
    }
    assert boxes[(0.0, 0)] == 0.4  # idle: 4 of 10 (names sort: idle before main)
    assert boxes[(0.4, 0)] == 0.6  # main
    assert boxes[(0.4, 1)] == 0.5  # main;read: 5 of 10
    assert boxes[(0.9, 1)] == 0.1  # main;write
    assert len(boxes) == 4


def test_empty_inputs_still_make_figures() -> None:
    _render(plots.histogram(pd.DataFrame({"slot": [], "count": []})))
    _render(plots.flamegraph(pd.DataFrame({"stack": [], "count": []})))
