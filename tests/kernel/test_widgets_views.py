"""Live views over real maps and streams, with read() workloads on a file this test opened.

Every probe counts only reads of one fd of this process, so the expected numbers are exact.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator

import numpy as np
import pytest

from bpfnb.widgets import EventLog, LiveHistogram, LiveRate, LiveTable, show

PROBE = r"""
struct event_t { u32 size; u32 seq; };
BPF_HISTOGRAM(sizes);
BPF_HASH(by_size, u32, u64);
BPF_PERF_OUTPUT(events);
BPF_ARRAY(seq, u32, 1);

TRACEPOINT_PROBE(syscalls, sys_enter_read) {
    if (bpf_get_current_pid_tgid() >> 32 != PID || args->fd != FD)
        return 0;
    u32 size = args->count;
    sizes.increment(bpf_log2l(size));
    by_size.increment(size);
    int zero = 0;
    u32 *n = seq.lookup(&zero);
    if (!n)
        return 0;
    // One reader thread in the test: a plain increment is exact (clang 14's BPF target
    // cannot use the value an atomic add returns).
    struct event_t event = {.size = size, .seq = *n};
    *n += 1;
    events.perf_submit(args, &event, sizeof(event));
    return 0;
}
"""


@pytest.fixture
def zero_fd() -> Iterator[int]:
    fd = os.open("/dev/zero", os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.fixture
def probe(bcc_ok: None, zero_fd: int):
    import bpfnb

    obj = bpfnb.compile(PROBE, defines={"PID": os.getpid(), "FD": zero_fd})
    try:
        yield obj
    finally:
        obj.close()


def reads(fd: int, size: int, times: int) -> None:
    for _ in range(times):
        os.read(fd, size)


def drawn_bars(view: LiveHistogram) -> list[int]:
    return [int(n) for n in re.findall(r'class="bpfnb-bar" data-count="(\d+)"', view._body.value)]


def test_histogram_bars_equal_the_map_counts(probe, zero_fd):
    reads(zero_fd, 100, 2)  # before the view: in the map, not in the bars
    view = show(probe, "sizes")
    try:
        assert isinstance(view, LiveHistogram)
        reads(zero_fd, 1, 4)  # slot 1
        reads(zero_fd, 100, 10)  # 64 -> 127
        reads(zero_fd, 5000, 3)  # 4096 -> 8191
        view.refresh()
        data = view.data
        # From the first to the last slot with counts, as bcc prints them.
        assert list(data["range"]) == ["0 -> 1"] + [
            f"{2**i} -> {2 ** (i + 1) - 1}" for i in range(1, 13)
        ]
        counts = dict(zip(data["range"], data["count"]))
        assert counts["0 -> 1"] == 4
        assert counts["64 -> 127"] == 10
        assert counts["4096 -> 8191"] == 3
        assert sum(counts.values()) == 17
        assert dict(zip(data["range"], data["total"]))["64 -> 127"] == 12
        assert drawn_bars(view) == list(data["count"])
        # The bars equal the map's own histogram, less what was there at the start.
        hist = probe.maps["sizes"].to_histogram("log2")
        assert int(hist.loc[hist["low"] == 64, "count"].iloc[0]) == 12
    finally:
        view.close()


def test_table_rows_and_order_follow_the_map(probe, zero_fd):
    reads(zero_fd, 1, 5)
    reads(zero_fd, 2, 3)
    reads(zero_fd, 3, 9)
    view = LiveTable(probe.maps["by_size"], deltas=True, owner=probe)
    try:
        assert list(view.data["key"]) == [3, 1, 2]
        assert list(view.data["value"]) == [9, 5, 3]
        reads(zero_fd, 2, 10)
        reads(zero_fd, 4, 1)
        view.refresh()
        assert list(view.data["key"]) == [2, 4, 3, 1]  # by change since the last refresh
        assert list(view.data["Δvalue"]) == [10, 1, 0, 0]
        assert list(view.data["value"]) == [13, 1, 9, 5]
        plain = LiveTable(probe.maps["by_size"], top=2)
        assert list(plain.data["key"]) == [2, 3]
        plain.close()
    finally:
        view.close()


def test_rate_of_real_counters(probe, zero_fd):
    reads(zero_fd, 7, 1)
    view = LiveRate(probe.maps["by_size"], owner=probe)
    try:
        reads(zero_fd, 7, 40)
        reads(zero_fd, 9, 10)
        view.refresh()
        latest = view.data.iloc[-1]
        assert list(view.data.columns) == ["7", "9"]
        # One elapsed time divides both, so their ratio is the ratio of new reads.
        assert latest["7"] / latest["9"] == pytest.approx(4.0)
    finally:
        view.close()


def test_event_log_shows_the_newest_events_of_a_perf_stream(probe, zero_fd):
    view = show(probe, "events")
    try:
        assert isinstance(view, EventLog)
        view.last = 5
        sizes = [10 + i for i in range(8)]
        for size in sizes:
            os.read(zero_fd, size)
        view.refresh()
        assert list(view.data["size"]) == sizes[::-1][:5]
        assert list(view.data["seq"]) == list(range(7, 2, -1))
        assert "received 8 · lost 0 · dropped 0" in view.status
    finally:
        view.close()
    assert view.source.closed  # show() opened the stream, so the view closed it


def test_views_refresh_on_the_loop_and_stop_when_the_object_closes(probe, zero_fd):
    async def scenario() -> None:
        hist = show(probe, "sizes", interval=0.05)
        table = show(probe, "by_size", interval=0.05)
        assert hist.running and table.running
        for _ in range(6):
            os.read(zero_fd, 300)
            await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while int(np.sum(hist.data["count"])) < 6:
            assert loop.time() < deadline, "the task never showed the reads"
            await asyncio.sleep(0.02)
        assert list(table.data["key"]) == [300]
        probe.close()
        assert not hist.running and not table.running
        assert "source closed" in hist.status
        seen = hist.refresh_count
        await asyncio.sleep(0.2)
        assert hist.refresh_count == seen
        hist.close()
        table.close()

    asyncio.run(scenario())
