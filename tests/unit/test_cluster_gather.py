"""Gathering engines' answers without a cluster: frames, histograms, streams and failures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bpfnb.cluster.engine import Failure
from bpfnb.cluster.failures import no_engine_answered
from bpfnb.cluster.gather import histograms, labelled
from bpfnb.cluster.streams import ClusterStream
from bpfnb.errors import ClusterError, CompileError, Diagnostic
from bpfnb.events.stream import StreamStats
from bpfnb.maps.histogram import bounds


def hist(counts: dict[int, int], bucket: str | None = None) -> pd.DataFrame:
    # One engine's Map.to_histogram(): dense from slot 1 to its last non-empty slot.
    last = max(counts, default=0)
    slots = np.arange(1, last + 1)
    low, high = bounds(slots, "log2")
    frame = pd.DataFrame(
        {
            "slot": slots,
            "low": low,
            "high": high,
            "count": np.array([counts.get(int(s), 0) for s in slots], dtype=np.uint64),
        }
    )
    if bucket is not None:
        frame.insert(0, "comm", [bucket] * len(frame))
    return frame


def test_labelled_puts_host_and_engine_first_in_engine_order() -> None:
    a = pd.DataFrame({"key": [1, 2], "value": [10, 20]}, index=[5, 6])
    b = pd.DataFrame({"key": [1], "value": [7]})
    frame = labelled([("h1", 0, a), ("h2", 3, b)])
    assert list(frame.columns) == ["host", "engine", "key", "value"]
    assert frame.values.tolist() == [["h1", 0, 1, 10], ["h1", 0, 2, 20], ["h2", 3, 1, 7]]
    assert list(frame.index) == [0, 1, 2]
    assert list(labelled([]).columns) == ["host", "engine"]


def test_histograms_align_every_engine_on_every_bucket() -> None:
    parts = [("h1", 0, hist({1: 4, 3: 2})), ("h2", 1, hist({5: 9})), ("h2", 2, hist({}))]
    frame = histograms(parts)
    assert list(frame.columns) == ["host", "engine", "slot", "low", "high", "count"]
    for engine, expected in ((0, {1: 4, 3: 2}), (1, {5: 9}), (2, {})):
        rows = frame[frame["engine"] == engine]
        assert list(rows["slot"]) == [1, 2, 3, 4, 5]
        assert dict(zip(rows["slot"], rows["count"])) == {
            s: expected.get(s, 0) for s in range(1, 6)
        }
        assert list(rows["low"]) == [0, 2, 4, 8, 16]
    assert frame["count"].dtype == np.uint64


def test_merged_histograms_sum_per_bucket_in_one_engines_shape() -> None:
    parts = [("h1", 0, hist({1: 4, 3: 2})), ("h2", 1, hist({3: 1, 5: 9}))]
    merged = histograms(parts, merged=True)
    assert list(merged.columns) == ["slot", "low", "high", "count"]
    assert dict(zip(merged["slot"], merged["count"])) == {1: 4, 2: 0, 3: 3, 4: 0, 5: 9}


def test_sectioned_histograms_align_by_bucket_and_slot() -> None:
    a = pd.concat([hist({2: 1}, "bash"), hist({1: 5}, "sshd")], ignore_index=True)
    b = hist({3: 7}, "bash")
    frame = histograms([("h1", 0, a), ("h2", 1, b)])
    assert list(frame.columns[:4]) == ["host", "engine", "comm", "slot"]
    second = frame[frame["engine"] == 1]
    assert list(zip(second["comm"], second["slot"], second["count"])) == [
        ("bash", 1, 0),
        ("bash", 2, 0),
        ("bash", 3, 7),
        ("sshd", 1, 0),
    ]
    merged = histograms([("h1", 0, a), ("h2", 1, b)], merged=True)
    assert list(zip(merged["comm"], merged["slot"], merged["count"])) == [
        ("bash", 1, 0),
        ("bash", 2, 1),
        ("bash", 3, 7),
        ("sshd", 1, 5),
    ]


def test_errors_alike_on_every_engine_raise_the_engines_own_error() -> None:
    err = CompileError([Diagnostic(2, 5, "error", "use of undeclared identifier 'slot'")])
    failed = [Failure(e, "load", str(err), f"h{e}", err) for e in (0, 1)]
    raised = no_engine_answered("counter", failed)
    assert isinstance(raised, CompileError)
    assert raised.__notes__[-1] == "on every engine: engine 0 (h0), engine 1 (h1)"


def test_different_errors_raise_a_cluster_error_naming_each_engine() -> None:
    failed = [
        Failure(0, "load", "line 2: one", "h0", CompileError([Diagnostic(2, 1, "error", "one")])),
        Failure(1, "load", "died", "h1", gone=True),
    ]
    raised = no_engine_answered("counter", failed)
    assert isinstance(raised, ClusterError)
    assert raised.failures == [("h0", 0, "load", "line 2: one"), ("h1", 1, "load", "died")]
    assert "h1 (engine 1) at load: died" in "\n".join(raised._render_traceback_())


class FakeOwner:
    """Answers polls with the rows each engine is given."""

    closed = False

    def __init__(self) -> None:
        self.next: dict[int, tuple[pd.DataFrame, StreamStats]] = {}

    def host_of(self, engine: int) -> str:
        return f"h{engine}"

    def call(self, func, *args, step="", wait=0.0):
        answers, self.next = self.next, {}
        return answers


def events(first: int, n: int) -> pd.DataFrame:
    return pd.DataFrame({"seq": np.arange(first, first + n, dtype=np.uint64)})


def test_a_cluster_stream_keeps_maxlen_rows_and_counts_per_engine() -> None:
    owner = FakeOwner()
    stream = ClusterStream(owner, "events", "k", maxlen=5, kind="perf buffer")
    owner.next = {0: (events(0, 3), StreamStats(3, 0, 0, 0)), 1: (events(0, 1), StreamStats(1))}
    assert stream.poll() == 4
    owner.next = {0: (events(3, 2), StreamStats(5, 1, 0, 0)), 1: (events(1, 0), StreamStats(1))}
    assert stream.poll() == 2
    frame = stream.to_frame()
    assert len(stream) == 5 and list(frame.index) == [1, 2, 3, 4, 5]
    assert list(zip(frame["engine"], frame["seq"])) == [(0, 1), (0, 2), (1, 0), (0, 3), (0, 4)]
    assert stream.tail(2)["seq"].tolist() == [3, 4]
    stats = stream.stats
    assert (stats.received, stats.lost, stats.discarded) == (6, 1, 1)
    per_host = stream.per_host
    assert per_host[["host", "engine", "received", "lost"]].values.tolist() == [
        ["h0", 0, 5, 1],
        ["h1", 1, 1, 0],
    ]


def test_an_engine_that_does_not_count_its_losses_makes_the_total_unknown() -> None:
    owner = FakeOwner()
    stream = ClusterStream(owner, "events", "k", maxlen=10, kind="ring buffer")
    owner.next = {
        0: (events(0, 1), StreamStats(1, 0, 0)),
        1: (events(0, 1), StreamStats(1, 0, None)),
    }
    stream.poll()
    assert stream.stats.dropped is None and stream.stats.lost == 0


@pytest.mark.parametrize("merged", [False, True])
def test_no_engine_no_rows(merged: bool) -> None:
    assert len(histograms([("h", 0, hist({}))], merged=merged)) == 0
