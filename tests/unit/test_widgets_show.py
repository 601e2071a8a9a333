"""show(): which view a map gets, and that it is tied to the object's lifetime."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bpfnb.object import BpfObject
from bpfnb.sys.constants import MapType
from bpfnb.widgets import EventLog, LiveHistogram, LiveRate, LiveTable, show


class FakeMap:
    def __init__(
        self, name: str, map_type: MapType, max_entries: int, key=np.uint32, value=np.uint64
    ):
        self.name = name
        self.type = map_type
        self.max_entries = max_entries
        self.key_type = SimpleNamespace(dtype=np.dtype(key))
        self.value_type = SimpleNamespace(dtype=np.dtype(value))
        self.closed = False

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"key": np.arange(3, dtype=np.uint32), "value": np.ones(3, np.uint64)})

    def to_histogram(self, kind: str = "log2"):
        return np.zeros(self.max_entries, dtype=np.uint64)

    def close(self) -> None:
        self.closed = True


class FakeStream:
    name = "events"
    closed = False
    stats = SimpleNamespace(received=0, lost=0, dropped=0, discarded=0)

    def poll(self, timeout: float = 0) -> int:
        return 0

    def tail(self, n: int) -> pd.DataFrame:
        return pd.DataFrame({"pid": np.zeros(0, np.uint32)})

    def close(self) -> None:
        self.closed = True


class Obj(BpfObject):
    def stream(self, name, maxlen=100_000, event_type=None):
        self.opened = FakeStream()
        return self.opened


@pytest.fixture
def obj():
    maps = {
        "dist": FakeMap("dist", MapType.ARRAY, 64, key=np.int32),
        "counts": FakeMap("counts", MapType.HASH, 10240),
        "slots": FakeMap("slots", MapType.ARRAY, 4),
        "events": FakeMap("events", MapType.PERF_EVENT_ARRAY, 2),
        "ring": FakeMap("ring", MapType.RINGBUF, 4096),
    }
    probe = Obj("probe", {}, maps)
    yield probe
    probe.close()


def test_picks_the_fitting_view(obj):
    assert type(show(obj, "dist")) is LiveHistogram
    assert type(show(obj, "counts")) is LiveTable
    assert type(show(obj, "slots")) is LiveTable
    assert type(show(obj, "events")) is EventLog
    assert type(show(obj, "ring")) is EventLog
    assert type(show(obj, "counts", kind="rate")) is LiveRate
    assert type(show(obj, "events", kind="rate")) is LiveRate


def test_kind_and_interval_are_passed(obj):
    view = show(obj, "counts", kind="linear", interval=0.5)
    assert isinstance(view, LiveHistogram) and view.kind == "linear"
    assert view.interval == 0.5


def test_views_stop_with_the_object_and_close_their_stream(obj):
    table = show(obj, "counts")
    log = show(obj, "events")
    stream = obj.opened
    obj.close()
    assert "source closed" in table.status
    log.close()
    assert stream.closed


def test_bad_names_and_kinds(obj):
    with pytest.raises(KeyError, match="no map 'nope'.*counts, dist"):
        show(obj, "nope")
    with pytest.raises(ValueError, match="kind must be one of"):
        show(obj, "counts", kind="pie")
    with pytest.raises(ValueError, match="event stream"):
        show(obj, "events", kind="log2")
    with pytest.raises(ValueError, match="needs a stream"):
        show(obj, "counts", kind="log")
