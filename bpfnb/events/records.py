"""Split the raw bytes of a perf buffer or a ring buffer into fixed-size event payloads.

Both parsers find runs of consecutive records with the same header and cut each run out with
one numpy reshape, so a batch of fixed-size events costs a few numpy calls, not a Python step
per event. Records of other sizes (variable-length events) form runs of one and still decode:
a payload shorter than the event type is padded with zeros, a longer one is cut to its size.

A ring buffer record keeps the exact size that was submitted. A perf record does not: the kernel
rounds the raw data up so that it and its u32 size fill whole 8-byte words, and leaves the pad
bytes unwritten (they hold whatever the ring held before). Variable-size events in a perf
buffer should therefore be submitted in sizes where ``4 + size`` is a multiple of 8, or carry
their own length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Batch", "parse_perf", "parse_ringbuf"]

# include/uapi/linux/perf_event.h
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
# Compare a perf header's type and size, not its misc bits (they carry the CPU mode).
_TYPE_AND_SIZE = np.uint64(0xFFFF_0000_FFFF_FFFF)
_SAMPLE_PAYLOAD = 12  # perf_event_header (8) + the u32 size of the PERF_SAMPLE_RAW data

# include/uapi/linux/bpf.h: the top bits of a ring buffer record's length word.
RINGBUF_BUSY = 1 << 31
RINGBUF_DISCARD = 1 << 30
RINGBUF_HEADER = 8


@dataclass
class Batch:
    """What one read produced: payload blocks (``uint8``, one row per event) and counters."""

    blocks: list[np.ndarray] = field(default_factory=list)
    lost: int = 0
    consumed: int = 0  # bytes read, up to the first record still being written

    @property
    def count(self) -> int:
        return sum(len(block) for block in self.blocks)

    def detach(self) -> Batch:
        """Copy the payloads out into one array, so the ring's memory may be reused."""
        if self.blocks:
            self.blocks = [np.concatenate(self.blocks)]
        return self

    def records(self, dtype: np.dtype) -> np.ndarray:
        """All payloads as one structured array of ``dtype``."""
        if not self.blocks:
            return np.empty(0, dtype=dtype)
        raw = self.blocks[0] if len(self.blocks) == 1 else np.concatenate(self.blocks)
        return np.ascontiguousarray(raw).view(dtype).reshape(len(raw))


def _fit(block: np.ndarray, width: int) -> np.ndarray:
    if block.shape[1] >= width:
        return block[:, :width]
    padded = np.zeros((len(block), width), dtype=np.uint8)
    padded[:, : block.shape[1]] = block
    return padded


def _run_length(headers: np.ndarray, first: int | np.integer) -> int:
    # How many headers from the start equal ``first``.
    same = headers == first
    return len(same) if same.all() else int(np.argmin(same))


def parse_perf(buf: np.ndarray, event_size: int) -> Batch:
    """Parse perf records (``PERF_RECORD_SAMPLE`` with raw data, ``PERF_RECORD_LOST``)."""
    batch = Batch()
    usable = len(buf) - len(buf) % 8
    words = buf[:usable].view("<u8")
    pos = 0
    while pos + 8 <= usable:
        header = int(words[pos // 8])
        rtype, size = header & 0xFFFFFFFF, header >> 48
        if size < 8 or size % 8 or pos + size > usable:
            break  # not a record boundary: never read past it
        if rtype == PERF_RECORD_SAMPLE and size >= _SAMPLE_PAYLOAD:
            step = size // 8
            limit = (usable - pos) // size
            headers = words[pos // 8 : pos // 8 + limit * step : step] & _TYPE_AND_SIZE
            run = _run_length(headers, np.uint64(header) & _TYPE_AND_SIZE)
            raw_size = int(buf[pos + 8 : pos + 12].view("<u4")[0])
            width = min(raw_size, size - _SAMPLE_PAYLOAD)
            block = buf[pos : pos + run * size].reshape(run, size)
            batch.blocks.append(
                _fit(block[:, _SAMPLE_PAYLOAD : _SAMPLE_PAYLOAD + width], event_size)
            )
            pos += run * size
            continue
        if rtype == PERF_RECORD_LOST and size >= 24:
            batch.lost += int(words[pos // 8 + 2])  # header, id, lost
        pos += size
    batch.consumed = pos
    return batch


def parse_ringbuf(buf: np.ndarray, event_size: int) -> Batch:
    """Parse ring buffer records, stopping at the first one still being written (BUSY).

    ``consumed`` is where the consumer position may advance to; discarded records are skipped.
    """
    batch = Batch()
    usable = len(buf) - len(buf) % 8
    words = buf[:usable].view("<u4")
    pos = 0
    while pos + RINGBUF_HEADER <= usable:
        length = int(words[pos // 4])
        if length & RINGBUF_BUSY:
            break
        data_len = length & ~(RINGBUF_BUSY | RINGBUF_DISCARD)
        size = (data_len + RINGBUF_HEADER + 7) & ~7
        if pos + size > usable:
            break
        if length & RINGBUF_DISCARD:
            pos += size
            continue
        step = size // 4
        limit = (usable - pos) // size
        run = _run_length(words[pos // 4 : pos // 4 + limit * step : step], np.uint32(length))
        block = buf[pos : pos + run * size].reshape(run, size)
        batch.blocks.append(_fit(block[:, RINGBUF_HEADER : RINGBUF_HEADER + data_len], event_size))
        pos += run * size
    batch.consumed = pos
    return batch
