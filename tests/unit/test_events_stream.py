"""EventStream bookkeeping with a fake reader: retention, counters, frames, polling loops."""

from __future__ import annotations

import asyncio
import ctypes as ct
import os
import time

import numpy as np
import pandas as pd
import pytest

from bpfnb.events.records import Batch
from bpfnb.events.stream import EventStream, StreamStats
from bpfnb.frames import as_layout, layout_of


class Inner(ct.Structure):
    _fields_ = [("a", ct.c_uint16), ("b", ct.c_uint16)]


class Event(ct.Structure):
    _fields_ = [("seq", ct.c_uint64), ("ts", ct.c_uint64), ("comm", ct.c_char * 8), ("in", Inner)]


LAYOUT = layout_of(Event)


def payload(first: int, count: int, ts: int = 0) -> np.ndarray:
    records = np.zeros(count, dtype=LAYOUT.dtype)
    records["seq"] = np.arange(first, first + count)
    records["ts"] = ts
    records["comm"] = b"proc"
    records["in"]["a"] = 3
    return records.view(np.uint8).reshape(count, LAYOUT.size)


class FakeReader:
    """Hands out prepared batches; counts reads; its fd is one end of a pipe."""

    def __init__(self, kind: str = "ring buffer") -> None:
        self.kind = kind
        self.batches: list[Batch | BaseException] = []
        self.reads = 0
        self.closed = False
        self._pipe = os.pipe()

    @property
    def fds(self) -> list[int]:
        return [self._pipe[0]]

    def push(self, first: int, count: int, lost: int = 0, ts: int = 0) -> None:
        self.batches.append(Batch([payload(first, count, ts)], lost=lost))

    def read(self) -> Batch:
        self.reads += 1
        if not self.batches:
            return Batch()
        item = self.batches.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.closed = True
        for fd in self._pipe:
            os.close(fd)


class FakeDrops:
    def __init__(self) -> None:
        self.count = 0
        self.closed = False

    def close(self) -> None:
        self.closed = True


def make(maxlen: int = 100, kind: str = "ring buffer") -> tuple[EventStream, FakeReader]:
    reader = FakeReader(kind)
    return EventStream("events", reader, LAYOUT, maxlen=maxlen), reader


def test_poll_counts_and_frames_use_map_column_names() -> None:
    stream, reader = make()
    reader.push(0, 3)
    assert stream.poll() == 3
    assert stream.poll() == 0
    frame = stream.to_frame()
    assert list(frame.columns) == ["seq", "ts", "comm", "in.a", "in.b"]
    assert frame["comm"].tolist() == ["proc"] * 3
    assert frame["in.a"].tolist() == [3, 3, 3]


def test_maxlen_keeps_newest_rows_and_counts_the_rest() -> None:
    stream, reader = make(maxlen=10)
    reader.push(0, 4)
    reader.push(4, 4)
    reader.push(8, 5)  # 13 in all: 3 discarded, from the oldest chunk
    reader.push(13, 25)  # larger than maxlen on its own
    for _ in range(4):
        stream.poll()
    assert len(stream) == 10
    frame = stream.to_frame()
    assert frame["seq"].tolist() == list(range(28, 38))
    assert frame.index.tolist() == list(range(28, 38))  # numbered from the first event
    # No drop counter: the program does not count failed submits, and the stats say so.
    assert stream.stats == StreamStats(received=38, lost=0, dropped=None, discarded=28)
    assert not stream.counted and "dropped not counted by the program" in repr(stream.stats)


def test_tail_and_clear() -> None:
    stream, reader = make()
    reader.push(0, 6)
    stream.poll()
    tail = stream.tail(2)
    assert tail["seq"].tolist() == [4, 5]
    assert tail.index.tolist() == [4, 5]
    assert stream.tail(50)["seq"].tolist() == list(range(6))
    stream.clear()
    assert len(stream.to_frame()) == 0
    assert stream.stats.received == 6


def test_lost_and_dropped_by_buffer_kind() -> None:
    drops = FakeDrops()
    perf_reader = FakeReader("perf buffer")
    perf = EventStream("p", perf_reader, LAYOUT, drops=drops)
    perf_reader.push(0, 2, lost=5)
    perf.poll()
    drops.count = 3
    # The program's own count is what was lost; the kernel's LOST records only cross-check it.
    assert perf.stats == StreamStats(received=2, lost=3, dropped=0, discarded=0, kernel_lost=5)
    assert perf.counted and "kernel_lost=5" in repr(perf.stats)
    ring_reader = FakeReader("ring buffer")
    ring = EventStream("r", ring_reader, LAYOUT, drops=drops)
    assert ring.stats.dropped == 3 and ring.stats.lost == 0
    ring.close()
    drops.count = 100  # after close the stream keeps the count it had
    assert ring.stats.dropped == 3
    assert drops.closed
    perf.close()


def test_time_column_from_monotonic_ts() -> None:
    stream, reader = make()
    reader.push(0, 2, ts=time.clock_gettime_ns(time.CLOCK_MONOTONIC))
    stream.poll()
    frame = stream.to_frame(time=True)
    assert list(frame.columns)[0] == "time"
    age = pd.Timestamp.now(tz="UTC") - frame["time"].iloc[0]
    assert pd.Timedelta(0) <= age < pd.Timedelta(seconds=5)


def test_time_needs_a_ts_field() -> None:
    reader = FakeReader()
    stream = EventStream("e", reader, as_layout(np.dtype([("x", "<u8")])))
    with pytest.raises(KeyError, match="ts"):
        stream.to_frame(time=True)
    stream.close()


def test_close_is_idempotent_and_keeps_rows() -> None:
    stream, reader = make()
    reader.push(0, 2)
    stream.poll()
    stream.close()
    stream.close()
    assert reader.closed and stream.closed
    assert stream.poll() == 0
    assert len(stream.to_frame()) == 2
    assert "closed" in repr(stream) and "received=2" in repr(stream)


def test_collect_keeps_events_on_interrupt() -> None:
    stream, reader = make()
    reader.push(0, 3)
    reader.batches.append(KeyboardInterrupt())
    reader.push(3, 2)  # read by the final poll after the interrupt
    frame = stream.collect(30, progress=False)
    assert frame["seq"].tolist() == list(range(5))


def test_collect_polls_for_the_duration(capsys: pytest.CaptureFixture[str]) -> None:
    stream, reader = make()
    reader.push(0, 1)
    started = time.monotonic()
    frame = stream.collect(0.3)
    assert time.monotonic() - started >= 0.3
    assert len(frame) == 1 and reader.reads > 1
    assert "1 events" in capsys.readouterr().err


def test_background_polling_runs_on_the_loop_until_stopped() -> None:
    stream, reader = make()

    async def main() -> tuple[int, int, bool]:
        task = stream.run_in_background(interval=0.01)
        assert stream.run_in_background(interval=0.01) is task
        reader.push(0, 4)
        await asyncio.sleep(0.1)
        seen = len(stream)
        stream.stop()
        await asyncio.sleep(0.02)
        reader.push(4, 4)
        await asyncio.sleep(0.05)
        return seen, len(stream), stream.running

    seen, after_stop, running = asyncio.run(main())
    assert (seen, after_stop, running) == (4, 4, False)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="maxlen"):
        make(maxlen=0)
    with pytest.raises(TypeError, match="a numpy dtype, a ctypes type or a Layout"):
        as_layout(object())
    assert as_layout(Event).dtype == LAYOUT.dtype
    assert as_layout(np.dtype("<u4")).size == 4


def test_background_polling_needs_a_running_loop() -> None:
    stream, _ = make()
    with pytest.raises(RuntimeError, match="running asyncio loop"):
        stream.run_in_background()
    assert not stream.running


def test_a_perf_stream_without_a_counter_reports_lost_as_unknown() -> None:
    stream, reader = make(kind="perf buffer")
    reader.push(0, 2, lost=4)
    stream.poll()
    assert stream.stats.lost is None and stream.stats.kernel_lost == 4
    assert "lost not counted by the program" in repr(stream.stats)
    stream.close()


def test_background_drain_keeps_reading_while_the_caller_is_busy() -> None:
    reader = FakeReader()
    stream = EventStream("events", reader, LAYOUT, maxlen=50, background=True)
    try:
        for first in range(0, 80, 10):
            reader.push(first, 10)
        os.write(reader._pipe[1], b"x")  # wake the drain thread, as the kernel would
        deadline = time.monotonic() + 5
        while reader.batches and time.monotonic() < deadline:
            time.sleep(0.01)  # the caller is busy; it never polls
        assert not reader.batches, "the drain thread did not read"
        # 80 events arrived in the background; 30 fell past maxlen while still raw.
        frame = stream.to_frame()
        assert frame["seq"].tolist() == list(range(30, 80))
        assert stream.stats.received == 80 and stream.stats.discarded == 30
        assert stream.poll() == 0  # already counted as arrived when they were drained
    finally:
        stream.close()
    assert reader.closed


def test_a_drain_thread_error_reaches_the_caller() -> None:
    reader = FakeReader()
    reader.batches.append(OSError(5, "ring is gone"))
    stream = EventStream("events", reader, LAYOUT, background=True)
    try:
        os.write(reader._pipe[1], b"x")
        deadline = time.monotonic() + 5
        while reader.reads == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        with pytest.raises(OSError, match="ring is gone"):
            stream.poll()
    finally:
        stream.close()
