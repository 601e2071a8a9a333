"""Read a ``BPF_MAP_TYPE_RINGBUF`` map directly from its mmapped pages.

The data area is mapped twice in a row, so a record never wraps in our view. A record whose
header still has the BUSY bit is being written: reading stops there and resumes next time.
Records the program discarded (``bpf_ringbuf_discard``) are skipped.
"""

from __future__ import annotations

import os

from bpfnb.events.records import Batch, parse_ringbuf
from bpfnb.sys.fd import FD
from bpfnb.sys.mmap_ring import RingbufMmap

__all__ = ["RingBufferReader"]


class RingBufferReader:
    """The consumer side of the ring buffer map ``map_fd`` of ``size`` bytes."""

    kind = "ring buffer"

    def __init__(self, map_fd: int, event_size: int, size: int) -> None:
        self._map = FD(os.dup(map_fd))
        self.event_size = event_size
        try:
            self._ring = RingbufMmap(self._map.fileno(), size)
        except BaseException:
            self._map.close()
            raise

    @property
    def fds(self) -> list[int]:
        return [self._map.fileno()]

    @property
    def capacity(self) -> int:
        return self._ring.size

    def read(self) -> Batch:
        """Every committed record since the last read."""
        ring = self._ring
        start = ring.consumer
        end = ring.producer
        if end == start:
            return Batch()
        # The data area is mapped twice in a row, so [start, end) is one contiguous view. Each
        # header is read before its payload, and a committed record does not change until the
        # consumer position passes it: parse in place, copy the payloads out, then release.
        batch = parse_ringbuf(ring.view(start, end), self.event_size).detach()
        ring.consumer = start + batch.consumed
        return batch

    def close(self) -> None:
        if not self._map.closed:
            self._ring.close()
            self._map.close()
