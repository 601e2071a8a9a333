"""Read a ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` directly: one perf event and mmapped ring per CPU.

Each online CPU gets a ``PERF_COUNT_SW_BPF_OUTPUT`` event whose fd is stored in the map at the
CPU's index, so ``bpf_perf_event_output(ctx, &map, BPF_F_CURRENT_CPU, ...)`` lands in that
CPU's ring. Records can wrap around the end of a ring, and the kernel reports the records it
had no room for as ``PERF_RECORD_LOST``.

Wakeups: a wakeup per event (bcc's default) costs the producer an irq_work per event and the
consumer a trip through Python per event. Here the kernel wakes the reader when a ring is a
quarter full (a watermark); :meth:`EventStream.poll` also looks again every few milliseconds,
so a lone event is not held back for long.
"""

from __future__ import annotations

import contextlib
import ctypes as ct
import os

from bpfnb.events.records import Batch, parse_perf
from bpfnb.sys import bpf, perf
from bpfnb.sys.cpus import online_cpus
from bpfnb.sys.fd import FD
from bpfnb.sys.mmap_ring import PAGE_SIZE, PerfMmap

__all__ = ["PerfBufferReader"]

DEFAULT_PAGES = 64


class PerfBufferReader:
    """Per-CPU perf rings for the perf event array ``map_fd`` (``pages`` data pages per CPU)."""

    kind = "perf buffer"

    def __init__(self, map_fd: int, event_size: int, pages: int = DEFAULT_PAGES) -> None:
        # Our own reference to the map, so closing never touches an fd number reused since.
        self._map = FD(os.dup(map_fd))
        self.event_size = event_size
        self._rings: list[tuple[int, FD, PerfMmap]] = []
        try:
            for cpu in online_cpus():
                self._open_cpu(cpu, pages)
        except BaseException:
            self.close()
            raise

    def _open_cpu(self, cpu: int, pages: int) -> None:
        attr = perf.PerfEventAttr(
            type=perf.PERF_TYPE_SOFTWARE,
            config=perf.PERF_COUNT_SW_BPF_OUTPUT,
            sample_type=perf.PERF_SAMPLE_RAW,
            sample_period=1,
            flags=perf.FLAG_WATERMARK,
            wakeup_events=pages * PAGE_SIZE // 4,  # the union's wakeup_watermark, in bytes
        )
        event = perf.perf_event_open(attr, pid=-1, cpu=cpu)
        try:
            ring = PerfMmap(event.fileno(), pages)
        except BaseException:
            event.close()
            raise
        self._rings.append((cpu, event, ring))
        bpf.map_update(self._map.fileno(), ct.c_uint32(cpu), ct.c_uint32(event.fileno()))

    @property
    def fds(self) -> list[int]:
        """The fds to wait on (one per CPU)."""
        return [event.fileno() for _, event, _ in self._rings]

    @property
    def capacity(self) -> int:
        """Bytes of ring per CPU."""
        return self._rings[0][2].size if self._rings else 0

    def read(self) -> Batch:
        """Everything written since the last read, on every CPU."""
        total = Batch()
        for _, _, ring in self._rings:
            if ring.head == ring.tail:
                continue
            data, tail, _head = ring.read()
            batch = parse_perf(data, self.event_size)
            ring.tail = tail + batch.consumed
            total.blocks += batch.blocks
            total.lost += batch.lost
        return total

    def close(self) -> None:
        """Take the per-CPU events out of the map and release them."""
        for cpu, event, ring in self._rings:
            if not self._map.closed:
                with contextlib.suppress(OSError):
                    bpf.map_delete(self._map.fileno(), ct.c_uint32(cpu))
            ring.close()
            event.close()
        self._rings.clear()
        self._map.close()
