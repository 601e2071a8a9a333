"""The two shared-memory rings the kernel fills with events, mapped into this process.

- :class:`PerfMmap`: one per-CPU perf event's ``struct perf_event_mmap_page`` followed by its
  data pages. Records may wrap at the end of the data area.
- :class:`RingbufMmap`: a ``BPF_MAP_TYPE_RINGBUF`` map. The consumer page is mapped writable,
  the producer page and the data area read-only; the kernel maps the data area twice in a row,
  so a record that starts near the end continues contiguously past it.

Both expose their positions and a numpy ``uint8`` view of the data. Positions are free-running
64-bit byte counters; ``position & (size - 1)`` is the offset into the data area.

Ordering: the kernel publishes a position after writing the bytes before it (release), and the
consumer must read the position before the bytes (acquire). On x86 (TSO) plain loads give that;
each position read here is a separate numpy load followed by a fresh copy of the bytes.
"""

from __future__ import annotations

import mmap

import numpy as np

__all__ = ["PAGE_SIZE", "PerfMmap", "RingbufMmap"]

PAGE_SIZE = mmap.PAGESIZE

# Offsets in struct perf_event_mmap_page (include/uapi/linux/perf_event.h).
_DATA_HEAD = 1024
_DATA_TAIL = 1032
_DATA_OFFSET = 1040
_DATA_SIZE = 1048


class PerfMmap:
    """The mmapped ring of one perf event fd: a metadata page and ``pages`` data pages."""

    def __init__(self, fd: int, pages: int) -> None:
        if pages < 1 or pages & (pages - 1):
            raise ValueError(f"perf buffer pages must be a power of two, not {pages}")
        self._mm = mmap.mmap(fd, (pages + 1) * PAGE_SIZE, mmap.MAP_SHARED)
        meta = np.frombuffer(self._mm, dtype=np.uint64, count=PAGE_SIZE // 8)
        self._meta = meta
        offset = int(meta[_DATA_OFFSET // 8]) or PAGE_SIZE
        self.size = int(meta[_DATA_SIZE // 8]) or pages * PAGE_SIZE
        self.data = np.frombuffer(self._mm, dtype=np.uint8, count=self.size, offset=offset)

    @property
    def head(self) -> int:
        """Where the kernel will write next (``data_head``)."""
        return int(self._meta[_DATA_HEAD // 8])

    @property
    def tail(self) -> int:
        """How far this process has read (``data_tail``)."""
        return int(self._meta[_DATA_TAIL // 8])

    @tail.setter
    def tail(self, position: int) -> None:
        self._meta[_DATA_TAIL // 8] = position

    def read(self) -> tuple[np.ndarray, int, int]:
        """A copy of the unread bytes, and the (tail, head) positions it spans."""
        head = self.head
        tail = self.tail
        return copy_span(self.data, tail, head), tail, head

    def close(self) -> None:
        if not self._mm.closed:
            del self.data, self._meta
            self._mm.close()


class RingbufMmap:
    """The consumer page, producer page and twice-mapped data area of a ring buffer map."""

    def __init__(self, map_fd: int, size: int) -> None:
        if size < PAGE_SIZE or size & (size - 1):
            raise ValueError(f"ring buffer size must be a power-of-two number of pages: {size}")
        self.size = size
        self._consumer = mmap.mmap(map_fd, PAGE_SIZE, mmap.MAP_SHARED)
        self._producer = mmap.mmap(
            map_fd, PAGE_SIZE + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=PAGE_SIZE
        )
        self._cons = np.frombuffer(self._consumer, dtype=np.uint64, count=1)
        self._prod = np.frombuffer(self._producer, dtype=np.uint64, count=1)
        self.data = np.frombuffer(self._producer, dtype=np.uint8, count=2 * size, offset=PAGE_SIZE)

    @property
    def consumer(self) -> int:
        return int(self._cons[0])

    @consumer.setter
    def consumer(self, position: int) -> None:
        self._cons[0] = position

    @property
    def producer(self) -> int:
        return int(self._prod[0])

    def view(self, start: int, end: int) -> np.ndarray:
        """The live bytes from position ``start`` to ``end`` (at most ``size`` bytes, no wrap)."""
        offset = start & (self.size - 1)
        return self.data[offset : offset + (end - start)]

    def close(self) -> None:
        if not self._consumer.closed:
            del self.data, self._cons, self._prod
            self._consumer.close()
            self._producer.close()


def copy_span(data: np.ndarray, start: int, end: int) -> np.ndarray:
    """A contiguous copy of ring positions ``[start, end)`` of ``data``, unwrapping if needed."""
    size = len(data)
    length = end - start
    if length <= 0:
        return np.empty(0, dtype=np.uint8)
    offset = start & (size - 1)
    if offset + length <= size:
        return data[offset : offset + length].copy()
    first = size - offset
    out = np.empty(length, dtype=np.uint8)
    out[:first] = data[offset:]
    out[first:] = data[: length - first]
    return out
