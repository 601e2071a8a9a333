"""LiveHistogram: bars equal to counts since the view started, bcc labels, slot alignment."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from bpfnb.widgets import LiveHistogram
from bpfnb.widgets.live_histogram import bucket_bounds, labels


class ArrayHistogram:
    """A BPF_HISTOGRAM as a plain array of 64 slots."""

    name = "dist"

    def __init__(self) -> None:
        self.slots = np.zeros(64, dtype=np.uint64)
        self.kinds: list[str] = []

    def to_histogram(self, kind: str = "log2"):
        self.kinds.append(kind)
        return self.slots.copy()


class FrameHistogram:
    """A histogram given as rows of (low, high, count), only the non-empty slots."""

    name = "dist"

    def __init__(self, rows: list[tuple[int, int, int]]) -> None:
        self.rows = rows

    def to_histogram(self, kind: str = "log2") -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["low", "high", "count"])


def drawn_bars(view: LiveHistogram) -> list[int]:
    return [int(n) for n in re.findall(r'class="bpfnb-bar" data-count="(\d+)"', view._body.value)]


def test_bars_count_since_the_view_started():
    source = ArrayHistogram()
    source.slots[3] = 100  # before the view: not shown
    view = LiveHistogram(source)
    assert view.data.empty
    source.slots[3] += 7
    source.slots[5] += 2
    view.refresh()
    assert list(view.data["range"]) == ["4 -> 7", "8 -> 15", "16 -> 31"]
    assert list(view.data["count"]) == [7, 0, 2]
    assert list(view.data["total"]) == [107, 0, 2]
    assert drawn_bars(view) == [7, 0, 2]
    view.close()


def test_per_interval_bars():
    source = ArrayHistogram()
    view = LiveHistogram(source, per_interval=True)
    source.slots[1] += 4
    view.refresh()
    source.slots[2] += 3
    view.refresh()
    assert list(view.data["count"]) == [4, 3]
    assert list(view.data["interval"]) == [0, 3]
    assert drawn_bars(view) == [0, 3]
    view.close()


def test_reset_starts_counting_again():
    source = ArrayHistogram()
    view = LiveHistogram(source)
    source.slots[4] += 9
    view.refresh()
    view.reset()
    view.refresh()
    assert view.data.empty
    view.close()


def test_linear_kind_is_passed_and_labelled_by_value():
    source = ArrayHistogram()
    view = LiveHistogram(source, kind="linear")
    source.slots[10] += 1
    source.slots[12] += 2
    view.refresh()
    assert set(source.kinds) == {"linear"}
    assert list(view.data["range"]) == ["10", "11", "12"]
    view.close()


def test_frame_histograms_align_by_slot_when_slots_appear():
    source = FrameHistogram([(4, 7, 5)])
    view = LiveHistogram(source)
    source.rows = [(1, 1, 2), (4, 7, 6)]
    view.refresh()
    assert list(view.data["range"]) == ["0 -> 1", "4 -> 7"]  # the slots the map lists
    assert list(view.data["count"]) == [2, 1]
    view.close()


def test_bad_kind_is_rejected():
    with pytest.raises(ValueError, match="kind"):
        LiveHistogram(ArrayHistogram(), kind="log10")


def test_bcc_log2_bounds_and_labels():
    low, high = bucket_bounds(65, "log2")
    assert low[:5].tolist() == [0, 1, 2, 4, 8]
    assert high[:5].tolist() == [0, 1, 3, 7, 15]
    assert int(high[64]) == 2**64 - 1 and int(low[64]) == 2**63
    assert labels(low[1:4], high[1:4], "log2") == ["0 -> 1", "2 -> 3", "4 -> 7"]


def test_sections_are_summed_per_slot_and_rows_sorted():
    source = FrameHistogram([(4, 7, 1), (1, 1, 2), (4, 7, 3)])  # two sections, unsorted
    view = LiveHistogram(source)
    source.rows = [(4, 7, 2), (1, 1, 5), (4, 7, 4)]
    view.refresh()
    assert list(view.data["range"]) == ["0 -> 1", "4 -> 7"]
    assert list(view.data["count"]) == [3, 2]
    assert list(view.data["total"]) == [5, 6]
    view.close()


def test_per_interval_checkbox_switches_the_bars():
    source = ArrayHistogram()
    view = LiveHistogram(source)
    source.slots[1] += 4
    view.refresh()
    source.slots[1] += 1
    view.refresh()
    assert drawn_bars(view) == [5]
    view._per_interval_box.value = True  # what a click does
    assert view.per_interval and drawn_bars(view) == [1]
    assert "count per interval" in view._body.value
    parts = [view._per_interval_box, view._toggle, view._status]
    view.close()
    assert all(part.comm is None for part in parts)
