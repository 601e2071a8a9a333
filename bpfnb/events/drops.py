"""Read the per-CPU counts of events a program failed to submit.

Both doors give a program the same hidden map for this: ``bpfnb_drops``, a per-CPU hash from
the event map's name (``char[32]``) to a ``u64`` count. bcc cells get it from bpfnb's preamble
(keyed ``events``), ELF objects from ``<bpfnb/counted.h>`` (keyed by the map argument as
written, ``&events``): a counter sums both.
"""

from __future__ import annotations

import ctypes as ct
import os

from bpfnb.sys import bpf
from bpfnb.sys.cpus import possible_cpus
from bpfnb.sys.fd import FD

__all__ = ["DROP_COUNTER_MAP", "DROP_KEY_SIZE", "DropCounter"]

DROP_COUNTER_MAP = "bpfnb_drops"
DROP_KEY_SIZE = 32


class DropCounter:
    """Events the BPF program failed to submit to map ``name``, counted since this was made."""

    def __init__(self, counter_map_fd: int, name: str) -> None:
        self._map = FD(os.dup(counter_map_fd))
        self._keys = [
            ct.create_string_buffer(key.encode()[:DROP_KEY_SIZE], DROP_KEY_SIZE)
            for key in (name, f"&{name}")
        ]
        self._value = (ct.c_uint64 * len(possible_cpus()))()
        self._start = self._total()

    def _total(self) -> int:
        total = 0
        for key in self._keys:
            if bpf.map_lookup(self._map.fileno(), key, self._value):
                total += sum(self._value)
        return total

    @property
    def count(self) -> int:
        return self._total() - self._start

    def close(self) -> None:
        self._map.close()
