"""Event streams on the real kernel: exact counts and field values from a workload we control.

The workload is ``os.getppid()`` from this process: a tracepoint program filtered on our pid
submits one event per call, numbered by a per-program sequence counter, so every test knows
exactly how many events were produced and what each one holds. The programs are written as bcc
tutorials write them, with no bpfnb-specific code: bpfnb counts failed submits by itself.
"""

from __future__ import annotations

import asyncio
import ctypes as ct
import os

import numpy as np
import pytest

import bpfnb
from bpfnb.errors import BpfError
from bpfnb.sys import bpf

# One event per getppid() from PID. ``seq`` numbers the events 0, 1, 2, ... in submit order.
PROGRAM = """
struct event_t {
    u32 pid;
    u32 cpu;
    u64 ts;
    u64 seq;
    char comm[16];
};
BPF_ARRAY(sequence, u64, 1);
#ifdef RING
BPF_RINGBUF_OUTPUT(events, RING_PAGES);
#else
BPF_PERF_OUTPUT(events);
#endif

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u64 id = bpf_get_current_pid_tgid();
    if (id >> 32 != PID)
        return 0;
    int zero = 0;
    u64 *next = sequence.lookup(&zero);
    if (!next)
        return 0;
    struct event_t event = {};
    event.pid = id >> 32;
    event.cpu = bpf_get_smp_processor_id();
    event.ts = bpf_ktime_get_ns();
    event.seq = __sync_fetch_and_add(next, 1);
    bpf_get_current_comm(&event.comm, sizeof(event.comm));
#ifdef RING
    events.ringbuf_output(&event, sizeof(event), 0);
#else
    events.perf_submit(args, &event, sizeof(event));
#endif
    return 0;
}
"""

# The same events through reserve/submit.
RESERVE_PROGRAM = """
struct event_t {
    u32 pid;
    u32 value;
};
BPF_RINGBUF_OUTPUT(events, 1);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u64 id = bpf_get_current_pid_tgid();
    if (id >> 32 != PID)
        return 0;
    struct event_t *event = events.ringbuf_reserve(sizeof(struct event_t));
    if (!event)
        return 0;
    event->pid = id >> 32;
    event->value = 7;
    events.ringbuf_submit(event, 0);
    return 0;
}
"""

KINDS = ["perf", "ring"]


def _compile(kind: str, ring_pages: int = 64, text: str = PROGRAM) -> bpfnb.BpfObject:
    defines: dict[str, object] = {"PID": os.getpid(), "RING_PAGES": ring_pages}
    if kind == "ring":
        defines["RING"] = 1
    return bpfnb.compile(text, defines=defines, name=f"events_{kind}")


def _produce(n: int) -> None:
    for _ in range(n):
        os.getppid()


def _comm() -> str:
    with open(f"/proc/{os.getpid()}/comm") as f:
        return f.read().strip()[:15]


@pytest.mark.parametrize("kind", KINDS)
def test_every_event_arrives_with_its_fields(bcc_ok: None, kind: str) -> None:
    n = 3000
    obj = _compile(kind)
    try:
        stream = obj.stream("events")
        assert isinstance(stream, bpfnb.EventStream)
        _produce(n)
        received = 0
        for _ in range(50):
            received += stream.poll(timeout=0.05)
            if received >= n:
                break
        frame = stream.to_frame()
        stats = stream.stats
    finally:
        obj.close()
    assert received == n
    assert stats.received == n and stats.lost == 0 and stats.dropped == 0
    assert list(frame.columns) == ["pid", "cpu", "ts", "seq", "comm"]
    assert len(frame) == n
    # Per-CPU perf rings are read CPU by CPU; sorting by seq restores submit order.
    frame = frame.sort_values("seq")
    assert frame["seq"].tolist() == list(range(n))
    assert (frame["pid"] == os.getpid()).all()
    assert set(frame["comm"]) == {_comm()}
    assert frame["cpu"].between(0, os.cpu_count() or 1).all()
    assert frame["ts"].is_monotonic_increasing


@pytest.mark.parametrize("pages", [1, 64])
@pytest.mark.parametrize("kind", KINDS)
def test_every_event_is_received_or_counted_lost(bcc_ok: None, kind: str, pages: int) -> None:
    # The producer finishes before the first poll; a perf buffer's LOST record would still be
    # pending in the kernel then, but the program counted each failed submit itself.
    n = 20_000
    obj = _compile(kind, ring_pages=pages)
    try:
        stream = obj.stream("events", perf_pages=pages, maxlen=n)
        _produce(n)
        stream.poll()
        stats = stream.stats
        seqs = stream.to_frame()["seq"]
    finally:
        obj.close()
    assert seqs.is_unique and stats.received == len(seqs) and stats.discarded == 0
    if kind == "ring":
        assert stats.lost == 0 and stats.received + stats.dropped == n
    else:
        assert stats.dropped == 0 and stats.received + stats.lost == n
    if pages == 1:  # a 4 KiB buffer cannot hold what a tight loop produces between two drains
        assert (stats.dropped or stats.lost) > 0


def test_perf_submit_failures_count_as_lost(bcc_ok: None) -> None:
    # With the stream's CPU entries removed from the map, every submit fails with -ENOENT; the
    # cell's perf_submit calls, counted by bpfnb, report them as lost.
    obj = _compile("perf")
    try:
        stream = obj.stream("events")
        map_fd = obj.maps["events"].fd
        for cpu in range(os.cpu_count() or 1):
            bpf.map_delete(map_fd, ct.c_uint32(cpu))
        _produce(250)
        assert stream.poll(timeout=0.05) == 0
        stats = stream.stats
    finally:
        obj.close()
    assert stats.lost == 250 and stats.received == 0


def test_failed_reserves_count_as_dropped(bcc_ok: None) -> None:
    n = 5000
    obj = _compile("ring", text=RESERVE_PROGRAM)
    try:
        stream = obj.stream("events", maxlen=n)
        _produce(n)
        stream.poll()
        stats = stream.stats
        frame = stream.to_frame()
    finally:
        obj.close()
    assert stats.dropped > 0
    assert stats.received + stats.dropped == n
    assert (frame["value"] == 7).all() and (frame["pid"] == os.getpid()).all()


@pytest.mark.parametrize("kind", KINDS)
def test_maxlen_bounds_rows_and_counts_discarded(bcc_ok: None, kind: str) -> None:
    obj = _compile(kind)
    try:
        stream = obj.stream("events", maxlen=100)
        for batch in (60, 70, 250):
            _produce(batch)
            stream.poll(timeout=0.05)
            while stream.poll(timeout=0.02):
                pass
        frame = stream.to_frame()
        stats = stream.stats
    finally:
        obj.close()
    assert stats.received == 380
    assert stats.discarded == 280
    assert len(frame) == 100
    assert sorted(frame["seq"]) == list(range(280, 380))
    assert stream.closed


def test_explicit_event_type_and_time_column(bcc_ok: None) -> None:
    dtype = np.dtype(
        [("pid", "<u4"), ("cpu", "<u4"), ("ts", "<u8"), ("seq", "<u8"), ("name", "S16")]
    )
    obj = _compile("ring")
    try:
        stream = obj.stream("events", event_type=dtype)
        before = np.datetime64("now")
        _produce(5)
        stream.poll(timeout=0.05)
        frame = stream.to_frame(time=True)
        tail = stream.tail(2)
    finally:
        obj.close()
    assert list(frame.columns) == ["time", "pid", "cpu", "ts", "seq", "name"]
    assert frame["name"].tolist() == [_comm()] * 5
    now = np.datetime64("now")
    times = frame["time"].dt.tz_localize(None).to_numpy()
    assert (times >= before - np.timedelta64(1, "s")).all()
    assert (times <= now + np.timedelta64(1, "s")).all()
    assert tail["seq"].tolist() == [3, 4]
    assert tail.index.tolist() == [3, 4]


def test_background_polling_on_the_asyncio_loop(bcc_ok: None) -> None:
    obj = _compile("ring")
    stream = obj.stream("events")

    async def main() -> tuple[int, bool]:
        stream.run_in_background(interval=0.01)
        _produce(40)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(stream) == 40:
                break
        counted = len(stream)
        obj.close()  # the object's close stops the stream and its task
        await asyncio.sleep(0.05)
        return counted, stream.running

    try:
        counted, running = asyncio.run(main())
    finally:
        obj.close()
    assert counted == 40
    assert not running and stream.closed


def test_collect_returns_what_arrived(bcc_ok: None) -> None:
    obj = _compile("perf")
    try:
        stream = obj.stream("events")
        _produce(25)
        frame = stream.collect(0.2, progress=False)
    finally:
        obj.close()
    assert len(frame) == 25


def test_stream_of_a_map_that_is_not_an_event_buffer(bcc_ok: None) -> None:
    obj = _compile("ring")
    try:
        with pytest.raises(BpfError, match="not an event stream"):
            obj.stream("sequence")
        with pytest.raises(BpfError, match="no map 'nope'"):
            obj.stream("nope")
    finally:
        obj.close()


def test_stream_of_a_closed_object(bcc_ok: None) -> None:
    obj = _compile("ring")
    obj.close()
    with pytest.raises(BpfError, match="closed"):
        obj.stream("events")


# Events of 4, 12, 20 or 28 bytes: the seq and then (seq % 4) * 8 bytes of text. (A perf record
# pads its data to 8 bytes with whatever the ring held before and does not record the true size:
# 4 + these sizes are multiples of 8, so there is no padding to misread.)
VARIABLE_PROGRAM = """
struct event_t {
    u32 seq;
    char text[28];
};
BPF_ARRAY(sequence, u64, 1);
#ifdef RING
BPF_RINGBUF_OUTPUT(events, 1);
#else
BPF_PERF_OUTPUT(events);
#endif

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if (bpf_get_current_pid_tgid() >> 32 != PID)
        return 0;
    int zero = 0;
    u64 *next = sequence.lookup(&zero);
    if (!next)
        return 0;
    struct event_t event = {};
    event.seq = __sync_fetch_and_add(next, 1);
    __builtin_memcpy(event.text, "abcdefghijklmnopqrstuvwxyz.", 28);
    u32 size = 4 + (event.seq % 4) * 8;
#ifdef RING
    events.ringbuf_output(&event, size, 0);
#else
    events.perf_submit(args, &event, size);
#endif
    return 0;
}
"""


@pytest.mark.parametrize("kind", KINDS)
def test_variable_size_records_decode_with_zero_padding(bcc_ok: None, kind: str) -> None:
    # One-page buffers read every 100 events (at most 4000 bytes): no loss, and the rings wrap
    # many times, so stale bytes would show if records were misread.
    rounds, per_round = 40, 100
    obj = _compile(kind, ring_pages=1, text=VARIABLE_PROGRAM)
    try:
        stream = obj.stream("events", perf_pages=1)
        for _ in range(rounds):
            _produce(per_round)
            stream.poll()
        frame = stream.to_frame().sort_values("seq")
        stats = stream.stats
    finally:
        obj.close()
    n = rounds * per_round
    assert stats.received == n and stats.lost == 0 and stats.dropped == 0
    assert frame["seq"].tolist() == list(range(n))
    expected = ["abcdefghijklmnopqrstuvwxyz."[: (seq % 4) * 8] for seq in range(n)]
    assert frame["text"].tolist() == expected


NESTED_PROGRAM = """
struct inner_t {
    u32 a;
    u32 b;
};
struct event_t {
    u64 seq;
    struct inner_t inner;
};
BPF_RINGBUF_OUTPUT(events, 1);
BPF_RINGBUF_OUTPUT(unused, 1);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if (bpf_get_current_pid_tgid() >> 32 != PID)
        return 0;
    struct event_t event = {.seq = 1, .inner = {.a = 2, .b = 3}};
    events.ringbuf_output(&event, sizeof(event), 0);
    return 0;
}
"""


def test_event_types_bcc_cannot_describe_need_event_type(bcc_ok: None) -> None:
    obj = _compile("ring", text=NESTED_PROGRAM)
    try:
        with pytest.raises(BpfError, match="event_type="):
            obj.stream("events")  # bcc's event description has no nested structs
        with pytest.raises(BpfError, match="no submit"):
            obj.stream("unused")
        inner = np.dtype([("a", "<u4"), ("b", "<u4")])
        event_type = np.dtype([("seq", "<u8"), ("inner", inner)])
        stream = obj.stream("events", event_type=event_type)
        _produce(2)
        stream.poll()
        frame = stream.to_frame()
    finally:
        obj.close()
    assert list(frame.columns) == ["seq", "inner.a", "inner.b"]
    assert frame.values.tolist() == [[1, 2, 3], [1, 2, 3]]
