"""LiveRate: rates from a map's counters and from a stream's events, against fakes."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bpfnb.widgets import LiveRate
from bpfnb.widgets import live_rate as rate_module


class FakeClock:
    """time.monotonic for the rate module, advanced by hand so rates are exact."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(rate_module, "time", fake)
    return fake


class FakeMap:
    name = "syscalls"

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "key": np.array(list(self.counts), dtype=np.uint32),
                "value": np.array(list(self.counts.values()), dtype=np.uint64),
            }
        )


class FakeStream:
    name = "events"

    def __init__(self) -> None:
        self.rows: list[str] = []
        self.pending: list[str] = []
        self.stats = SimpleNamespace(received=0, lost=0, dropped=0, discarded=0)
        self.closed = False

    def poll(self, timeout: float = 0) -> int:
        arrived, self.pending = self.pending, []
        self.rows += arrived
        self.stats.received += len(arrived)
        return len(arrived)

    def tail(self, n: int) -> pd.DataFrame:
        return pd.DataFrame({"comm": self.rows[-n:] if n else []})


def test_map_counter_rates_per_key(clock):
    source = FakeMap()
    source.counts = {1: 100, 2: 10}
    view = LiveRate(source)
    assert view.data.empty
    assert "two refreshes" in view._body.value
    clock.now += 2.0
    source.counts = {1: 140, 2: 11, 3: 6}
    view.refresh()
    assert list(view.data.columns) == ["1", "3", "2"]  # most counts first
    assert view.data.iloc[-1].to_dict() == {"1": 20.0, "3": 3.0, "2": 0.5}
    assert view.data.index.tolist() == [2.0]
    assert view._body.value.count("<polyline") == 3
    view.close()


def test_window_and_top(clock):
    source = FakeMap()
    view = LiveRate(source, window=10, top=2)
    for step in range(1, 31):
        clock.now += 1.0
        source.counts = {k: step * k for k in range(1, 6)}
        view.refresh()
    assert list(view.data.columns) == ["5", "4"]
    assert view.data.index.min() >= 30 - 10
    assert set(view.data["5"]) == {5.0}
    view.close()


def test_group_by_a_key_column(clock):
    class CommMap(FakeMap):
        def to_frame(self) -> pd.DataFrame:
            frame = super().to_frame()
            frame["comm"] = ["a" if k % 2 else "b" for k in frame["key"]]
            return frame

    source = CommMap()
    source.counts = {1: 0, 2: 0, 3: 0}
    view = LiveRate(source, key="comm")
    clock.now += 1.0
    source.counts = {1: 1, 2: 4, 3: 2}
    view.refresh()
    assert view.data.iloc[-1].to_dict() == {"b": 4.0, "a": 3.0}
    view.close()


def test_stream_events_per_second(clock):
    stream = FakeStream()
    stream.pending = ["x"] * 5  # before the view: not counted
    view = LiveRate(stream)
    clock.now += 0.5
    stream.pending = ["x"] * 10
    view.refresh()
    assert view.data.iloc[-1].to_dict() == {"events": 20.0}
    view.close()


def test_stream_rate_per_field_value(clock):
    stream = FakeStream()
    view = LiveRate(stream, key="comm")
    clock.now += 1.0
    stream.pending = list(itertools.chain(["sh"] * 3, ["cat"] * 1))
    view.refresh()
    assert view.data.iloc[-1].to_dict() == {"sh": 3.0, "cat": 1.0}
    assert "lost 0 · dropped 0" in view.status
    view.close()


def test_unknown_key_is_a_clear_error(clock):
    source = FakeMap()
    source.counts = {1: 1}
    with pytest.raises(KeyError, match="nope"):
        LiveRate(source, key="nope")


def test_bad_arguments():
    with pytest.raises(ValueError, match="window"):
        LiveRate(FakeMap(), window=0)
    with pytest.raises(ValueError, match="top"):
        LiveRate(FakeMap(), top=0)


def test_quiet_window_says_so(clock):
    source = FakeMap()
    source.counts = {1: 5}
    view = LiveRate(source, window=5)
    clock.now += 1.0
    view.refresh()
    assert list(view.data.columns) == []
    assert "no counts changed in the last 5 s" in view._body.value
    view.close()
