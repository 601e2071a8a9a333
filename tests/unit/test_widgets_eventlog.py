"""EventLog: the newest events first, chosen columns, stream counters in the status line."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bpfnb.widgets import EventLog


class FakeStream:
    name = "events"

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.pending: list[int] = []
        self.stats = SimpleNamespace(received=0, lost=2, dropped=1, discarded=0)
        self.polls = 0
        self.closed = False

    def poll(self, timeout: float = 0) -> int:
        self.polls += 1
        arrived, self.pending = self.pending, []
        self.pids += arrived
        self.stats.received += len(arrived)
        return len(arrived)

    def tail(self, n: int) -> pd.DataFrame:
        pids = np.array(self.pids[-n:], dtype=np.uint32)
        return pd.DataFrame({"pid": pids, "comm": [f"c{p}" for p in pids.tolist()]})

    def close(self) -> None:
        self.closed = True


def test_newest_first_and_bounded():
    stream = FakeStream()
    view = EventLog(stream, last=3)
    assert view.data.empty
    stream.pending = [1, 2, 3, 4, 5]
    view.refresh()
    assert list(view.data["pid"]) == [5, 4, 3]
    assert stream.polls == 2  # each refresh polls first
    assert "received 5 · lost 2 · dropped 1" in view.status
    view.close()


def test_columns_are_chosen_and_checked():
    stream = FakeStream()
    stream.pending = [7]
    view = EventLog(stream, columns=["comm"])
    assert list(view.data.columns) == ["comm"]
    assert list(view.data["comm"]) == ["c7"]
    view.close()
    with pytest.raises(KeyError, match="nope"):
        EventLog(stream, columns=["nope"])


def test_without_polling_it_only_shows_what_the_stream_holds():
    stream = FakeStream()
    stream.pending = [1]
    view = EventLog(stream, poll=False)
    assert view.data.empty and stream.polls == 0
    view.close()


def test_closing_the_view_can_close_the_stream():
    stream = FakeStream()
    view = EventLog(stream, close_source=True)
    view.close()
    assert stream.closed


def test_bad_last():
    with pytest.raises(ValueError, match="last"):
        EventLog(FakeStream(), last=0)
