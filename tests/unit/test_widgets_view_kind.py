"""show() honours a source's ``view_kind``: bpftrace histograms are no BPF arrays to recognise."""

from __future__ import annotations

import pandas as pd

from bpfnb.widgets import LiveHistogram, LiveTable, show


class Source:
    closed = False

    def __init__(self, view_kind: str | None) -> None:
        self.view_kind = view_kind
        self.reads = 0

    def to_histogram(self, kind: str = "log2") -> pd.DataFrame:
        self.reads += 1
        counts = [2 * self.reads, 5 * self.reads]
        return pd.DataFrame({"slot": [0, 10], "low": [0, 10], "high": [9, 19], "count": counts})

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"key": ["a"], "value": [1]})


class Owner:
    def __init__(self, **maps: Source) -> None:
        self.name = "prog"
        self.maps = maps


def test_view_kind_picks_the_view() -> None:
    owner = Owner(**{"@lat": Source("linear"), "@n": Source(None)})
    hist = show(owner, "@lat")
    table = show(owner, "@n")
    try:
        assert isinstance(hist, LiveHistogram) and hist.kind == "linear"
        hist.refresh()
        assert list(hist.data["range"]) == ["0", "10"]  # linear labels: each bucket's low
        assert list(hist.data["count"]) == [2, 5]
        assert isinstance(table, LiveTable)
        assert isinstance(show(owner, "@lat", kind="table"), LiveTable)  # an explicit kind wins
    finally:
        hist.close()
        table.close()
