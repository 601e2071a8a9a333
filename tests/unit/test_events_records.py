"""Parsing perf and ring buffer bytes into event payloads, on hand-built buffers."""

from __future__ import annotations

import struct

import numpy as np

from bpfnb.events.records import (
    PERF_RECORD_LOST,
    PERF_RECORD_SAMPLE,
    RINGBUF_BUSY,
    RINGBUF_DISCARD,
    Batch,
    parse_perf,
    parse_ringbuf,
)
from bpfnb.sys.mmap_ring import copy_span

# struct { u32 pid; u64 value; char tag[8]; } __attribute__((packed)): 20 bytes
EVENT = np.dtype(
    {"names": ["pid", "value", "tag"], "formats": ["<u4", "<u8", "S8"], "offsets": [0, 4, 12]}
)


def event_bytes(pid: int, value: int, tag: bytes = b"x") -> bytes:
    return struct.pack("<IQ8s", pid, value, tag)


def perf_sample(payload: bytes, misc: int = 0) -> bytes:
    raw = payload + b"\0" * (-(len(payload) + 4) % 8)  # the kernel pads u32 size + data to 8
    return struct.pack("<IHHI", PERF_RECORD_SAMPLE, misc, 12 + len(raw), len(raw)) + raw


def perf_lost(count: int) -> bytes:
    return struct.pack("<IHHQQ", PERF_RECORD_LOST, 0, 24, 99, count)


def as_buffer(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).copy()


def decode(batch: Batch) -> np.ndarray:
    return batch.records(EVENT)


def test_perf_samples_decode_in_one_run() -> None:
    data = b"".join(perf_sample(event_bytes(i, i * 10), misc=i % 3) for i in range(100))
    batch = parse_perf(as_buffer(data), EVENT.itemsize)
    records = decode(batch)
    assert len(batch.blocks) == 1  # misc bits differ, yet it is one vectorised run
    assert records["pid"].tolist() == list(range(100))
    assert records["value"].tolist() == [i * 10 for i in range(100)]
    assert batch.lost == 0 and batch.consumed == len(data)


def test_perf_lost_records_are_summed_between_samples() -> None:
    data = perf_sample(event_bytes(1, 1)) + perf_lost(5) + perf_sample(event_bytes(2, 2))
    data += perf_lost(7)
    batch = parse_perf(as_buffer(data), EVENT.itemsize)
    assert decode(batch)["pid"].tolist() == [1, 2]
    assert batch.lost == 12


def test_perf_variable_size_records_are_padded_or_cut() -> None:
    short = struct.pack("<I", 5)  # only the pid
    long = event_bytes(6, 60, b"abcdefgh") + b"tail-bytes"
    data = perf_sample(short) + perf_sample(long) + perf_sample(event_bytes(7, 70))
    records = decode(parse_perf(as_buffer(data), EVENT.itemsize))
    assert records["pid"].tolist() == [5, 6, 7]
    assert records["value"].tolist() == [0, 60, 70]
    assert records["tag"].tolist() == [b"", b"abcdefgh", b"x"]


def test_perf_records_wrapping_the_ring_end() -> None:
    records = b"".join(perf_sample(event_bytes(i, i)) for i in range(6))  # 6 x 32 bytes
    ring = np.zeros(128, dtype=np.uint8)
    start = 1000 * 128 + 80  # free-running position at offset 80: record 1 spans the end
    for i, byte in enumerate(records[:128]):
        ring[(start + i) % 128] = byte
    unread = copy_span(ring, start, start + 128)
    batch = parse_perf(unread, EVENT.itemsize)
    assert decode(batch)["pid"].tolist() == [0, 1, 2, 3]
    assert batch.consumed == 128


def test_perf_stops_at_a_torn_header() -> None:
    data = perf_sample(event_bytes(1, 1)) + struct.pack("<IHH", PERF_RECORD_SAMPLE, 0, 0)
    batch = parse_perf(as_buffer(data), EVENT.itemsize)
    assert decode(batch)["pid"].tolist() == [1]
    assert batch.consumed == 32


def ring_record(payload: bytes, flags: int = 0, pg_off: int = 0) -> bytes:
    pad = b"\0" * (-len(payload) % 8)
    return struct.pack("<II", len(payload) | flags, pg_off) + payload + pad


def test_ringbuf_records_decode_across_page_offsets() -> None:
    data = b"".join(ring_record(event_bytes(i, i), pg_off=i // 3) for i in range(50))
    batch = parse_ringbuf(as_buffer(data), EVENT.itemsize)
    assert len(batch.blocks) == 1
    assert decode(batch)["pid"].tolist() == list(range(50))
    assert batch.consumed == len(data)


def test_ringbuf_skips_discarded_and_stops_at_busy() -> None:
    data = (
        ring_record(event_bytes(1, 1))
        + ring_record(event_bytes(2, 2), RINGBUF_DISCARD)
        + ring_record(event_bytes(3, 3))
        + ring_record(event_bytes(4, 4), RINGBUF_BUSY)
        + ring_record(event_bytes(5, 5))
    )
    batch = parse_ringbuf(as_buffer(data), EVENT.itemsize)
    assert decode(batch)["pid"].tolist() == [1, 3]
    assert batch.consumed == 3 * 32  # the consumer may move up to the busy record only


def test_ringbuf_variable_sizes() -> None:
    data = ring_record(struct.pack("<I", 9)) + ring_record(event_bytes(10, 100) + b"extra")
    records = decode(parse_ringbuf(as_buffer(data), EVENT.itemsize))
    assert records["pid"].tolist() == [9, 10]
    assert records["value"].tolist() == [0, 100]


def test_empty_buffers() -> None:
    empty = np.empty(0, dtype=np.uint8)
    assert parse_perf(empty, 8).count == 0
    assert parse_ringbuf(empty, 8).count == 0
    assert len(decode(parse_perf(empty, EVENT.itemsize))) == 0
