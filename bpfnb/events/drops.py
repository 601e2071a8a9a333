"""Read the per-CPU drop counters that the ``%%bpf`` preamble keeps for each event map."""

from __future__ import annotations

import ctypes as ct
import os

from bpfnb.bcc.preamble import DROP_KEY_SIZE
from bpfnb.sys import bpf
from bpfnb.sys.cpus import possible_cpus
from bpfnb.sys.fd import FD

__all__ = ["DropCounter"]


class DropCounter:
    """Events the BPF program failed to submit to map ``name``, counted since this was made."""

    def __init__(self, counter_map_fd: int, name: str) -> None:
        self._map = FD(os.dup(counter_map_fd))
        self._key = ct.create_string_buffer(name.encode()[:DROP_KEY_SIZE], DROP_KEY_SIZE)
        self._value = (ct.c_uint64 * len(possible_cpus()))()
        self._start = self._total()

    def _total(self) -> int:
        if not bpf.map_lookup(self._map.fileno(), self._key, self._value):
            return 0
        return sum(self._value)

    @property
    def count(self) -> int:
        return self._total() - self._start

    def close(self) -> None:
        self._map.close()
