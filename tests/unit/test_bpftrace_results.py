"""bpftrace's JSON map prints as DataFrames, in the shapes of Map.to_frame/to_histogram."""

from __future__ import annotations

import numpy as np

from bpfnb.bpftrace.results import histogram_frame, histogram_kind, key_columns, value_frame
from bpfnb.bpftrace.script import MapInfo
from bpfnb.plots import histogram, linear_histogram
from bpfnb.widgets.live_histogram import Slots

# What bpftrace 0.17 printed for `BEGIN { @h = hist(-5); @h = hist(0); @h = hist(1);
# @h = hist(1); @h = hist(2); @h = hist(1000); }` (zero buckets 4..511 left out here).
LOG2 = [
    {"max": -1, "count": 1},
    {"min": 0, "max": 0, "count": 1},
    {"min": 1, "max": 1, "count": 2},
    {"min": 2, "max": 3, "count": 1},
    {"min": 4, "max": 7, "count": 0},
    {"min": 512, "max": 1023, "count": 1},
]
LINEAR = [  # lhist(x, 0, 50, 10) of -3, 0, 49, 50, 500
    {"max": -1, "count": 1},
    {"min": 0, "max": 9, "count": 1},
    {"min": 10, "max": 19, "count": 0},
    {"min": 40, "max": 49, "count": 1},
    {"min": 50, "count": 2},
]


def test_scalar_and_keyed_values() -> None:
    assert value_frame(42, MapInfo("@v", 0)).to_dict("list") == {"value": [42]}
    frame = value_frame({"bash": 3, "sshd": 5}, MapInfo("@k", 1, "count"))
    assert frame.to_dict("list") == {"key": ["bash", "sshd"], "value": [3, 5]}
    frame = value_frame({"8221,x": 15, "17,y": 2}, MapInfo("@m", 2, "sum"))
    assert frame.to_dict("list") == {"key.0": [8221, 17], "key.1": ["x", "y"], "value": [15, 2]}
    assert frame["key.0"].dtype == np.int64


def test_a_comma_inside_a_key_keeps_the_joined_text() -> None:
    assert key_columns(["1,a,b", "2,c"], 2) == {"key": ["1,a,b", "2,c"]}
    assert key_columns(["12", "7"], 1) == {"key": [12, 7]}
    assert key_columns(["12", "x"], 1) == {"key": ["12", "x"]}


def test_stats_and_avg() -> None:
    stats = value_frame({"count": 3, "average": 7, "total": 21}, MapInfo("@s", 0, "stats"))
    assert stats.to_dict("list") == {"count": [3], "average": [7], "total": [21]}
    keyed = value_frame({"q": {"count": 1, "average": 3, "total": 3}}, MapInfo("@s", 1), "stats")
    assert list(keyed.columns) == ["key", "count", "average", "total"]
    assert value_frame({"3": 4}, MapInfo("@a", 1, "avg"), "stats").to_dict("list") == {
        "key": [3],
        "value": [4],
    }


def test_empty_maps_keep_their_columns() -> None:
    assert list(value_frame(None, MapInfo("@m", 2, "count")).columns) == ["key.0", "key.1", "value"]
    assert list(value_frame(None, MapInfo("@s", 0, "stats")).columns) == [
        "count",
        "average",
        "total",
    ]
    empty = histogram_frame(None, MapInfo("@h", 1, "hist"))
    assert list(empty.columns) == ["key", "slot", "low", "high", "count"] and empty.empty


def test_log2_histogram_bounds_and_slots() -> None:
    frame = histogram_frame(LOG2, MapInfo("@h", 0, "hist"))
    assert list(frame.columns) == ["slot", "low", "high", "count"]
    assert frame["slot"].tolist() == [-1, 0, 1, 2, 3, 10]
    assert frame["low"].tolist() == [-(2**63), 0, 1, 2, 4, 512]
    assert frame["high"].tolist() == [-1, 0, 1, 3, 7, 1023]
    assert frame["count"].tolist() == [1, 1, 2, 1, 0, 1]
    # Slot k holds [2**(k-1), 2**k), as in bcc's log2 histograms.
    for slot, low in zip(frame["slot"][2:], frame["low"][2:]):
        assert low == 1 << (slot - 1)


def test_bpftrace_017_overflowed_bounds_become_the_rest() -> None:
    entries = [
        {"min": 1073741824, "max": 2147483647, "count": 0},
        {"min": -2147483648, "max": 0, "count": 1},
    ]
    frame = histogram_frame(entries, MapInfo("@h", 0, "hist"))
    assert frame["low"].tolist() == [2**30, 2**31] and frame["high"].iloc[1] == 2**63 - 1


def test_linear_histogram() -> None:
    frame = histogram_frame(LINEAR, MapInfo("@l", 0, "lhist"))
    assert frame["slot"].tolist() == [-10, 0, 10, 40, 50]
    assert frame["low"].tolist() == [-(2**63), 0, 10, 40, 50]
    assert frame["high"].tolist() == [-1, 9, 19, 49, 2**63 - 1]
    assert frame["count"].tolist() == [1, 1, 0, 1, 2]


def test_kind_from_the_program_or_the_bucket_shape() -> None:
    assert histogram_kind(MapInfo("@h", 0, "hist")) == "log2"
    assert histogram_kind(MapInfo("@h", 0, "lhist")) == "linear"
    assert histogram_kind(MapInfo("@h", 0), LOG2) == "log2"
    assert histogram_kind(MapInfo("@h", 0), LINEAR) == "linear"
    assert histogram_kind(MapInfo("@h", 1), {"a": [{"min": 0, "max": 0, "count": 1}]}) == "log2"


def test_keyed_histogram_sections_in_key_order() -> None:
    data = {"sshd": [{"min": 2, "max": 3, "count": 4}], "bash": LOG2[1:3]}
    frame = histogram_frame(data, MapInfo("@kh", 1, "hist"))
    assert list(frame.columns) == ["key", "slot", "low", "high", "count"]
    assert frame["key"].tolist() == ["bash", "bash", "sshd"]
    multi = histogram_frame({"1,a": LOG2[1:2], "2,b": LOG2[2:3]}, MapInfo("@m", 2, "hist"))
    assert multi["key"].tolist() == [(1, "a"), (2, "b")]


def test_frames_feed_plots_and_live_views() -> None:
    log2 = histogram_frame(LOG2, MapInfo("@h", 0, "hist"))
    assert len(histogram(log2).axes) == 1
    keyed = histogram_frame({"a": LOG2[1:4], "b": LOG2[3:4]}, MapInfo("@k", 1, "hist"))
    assert len(histogram(keyed).axes) == 2  # one panel per section
    assert len(linear_histogram(histogram_frame(LINEAR, MapInfo("@l", 0, "lhist"))).axes) == 1
    slots = Slots.of(keyed, "log2")
    assert slots.counts.tolist() == [1, 2, 2]  # sections summed per bucket
