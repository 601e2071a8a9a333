"""One ``Map`` subclass per kind of map, where the kind changes how entries behave."""

from __future__ import annotations

from typing import Any

import numpy as np

from bpfnb.errors import MapError
from bpfnb.frames import percpu_columns
from bpfnb.maps.base import Map
from bpfnb.maps.snapshot import Snapshot
from bpfnb.sys.cpus import possible_cpus

__all__ = [
    "ArrayMap",
    "EventMap",
    "HashMap",
    "LpmTrieMap",
    "LruHashMap",
    "LruPerCpuHashMap",
    "PerCpuArrayMap",
    "PerCpuHashMap",
]


class HashMap(Map):
    """``BPF_MAP_TYPE_HASH``: entries come and go; iteration order is the kernel's."""


class LruHashMap(HashMap):
    """``BPF_MAP_TYPE_LRU_HASH``: when full, the least recently used entries are evicted."""


class LpmTrieMap(HashMap):
    """``BPF_MAP_TYPE_LPM_TRIE``: keys are ``{u32 prefixlen; data}``; lookups match prefixes."""


class ArrayMap(Map):
    """``BPF_MAP_TYPE_ARRAY``: every index from 0 to ``max_entries - 1`` always exists.

    Deleting an entry zeroes it and ``clear()`` zeroes them all, as the kernel cannot remove
    array elements.
    """

    def __len__(self) -> int:
        return self.max_entries

    def __delitem__(self, key: Any) -> None:
        if key not in self:
            raise KeyError(key)
        self[key] = self._zero_value()

    def _zero_value(self) -> Any:
        return np.zeros(1, dtype=self.value_type.dtype)

    def clear(self) -> None:
        snap = self.snapshot()
        snap.values[...] = 0
        self._write_back(snap)

    def to_frame(self, per_cpu: bool = True, clear: bool = False) -> Any:
        snap = self.snapshot()
        frame = self._frame(snap, per_cpu)
        if clear:
            # Not atomic: arrays have no lookup-and-delete, so counts landing between the
            # read and the reset are lost.
            snap.values[...] = 0
            self._write_back(snap)
        return frame

    def _write_back(self, snap: Snapshot) -> None:
        from bpfnb.maps.snapshot import update_batch

        update_batch(self.fd, snap.keys, np.ascontiguousarray(snap.values))


class _PerCpu:
    """Values with one slot per possible CPU, each slot rounded up to 8 bytes (the kernel's
    ``round_up(value_size, 8)`` in ``bpf_map_value_size()``).

    ``m[key]`` returns a list with one value per CPU. ``m[key] = v`` writes ``v`` on every CPU,
    or, when ``v`` is a list with one item per CPU, each item on its CPU.
    """

    per_cpu = True

    @property
    def cpus(self) -> tuple[int, ...]:
        """The possible CPUs, in slot order."""
        return possible_cpus()

    def _value_record_dtype(self: Any) -> np.dtype:
        dtype = self.value_type.dtype
        slot = np.dtype(
            {
                "names": ["v"],
                "formats": [dtype],
                "offsets": [0],
                "itemsize": -(-dtype.itemsize // 8) * 8,
            }
        )
        return np.dtype((slot, (len(possible_cpus()),)))

    def _unpack_value(self: Any, record: np.ndarray) -> Any:
        return self._values.unpack(record[0]["v"])

    def _unpack_values(self: Any, records: np.ndarray) -> list[Any]:
        per_cpu = [self._values.unpack(records[:, i]["v"]) for i in range(records.shape[1])]
        return [list(row) for row in zip(*per_cpu, strict=True)]

    def _pack_value(self: Any, value: Any) -> np.ndarray:
        ncpu = len(possible_cpus())
        items = value if isinstance(value, list) and len(value) == ncpu else [value] * ncpu
        record = np.zeros(1, dtype=self._record_dtype)
        for i, item in enumerate(items):
            record[0, i]["v"] = self._values.pack(item)[0]
        return record

    def _value_records(self: Any, values: Any, count: int) -> np.ndarray:
        records = np.zeros(count, dtype=self._record_dtype)
        plain = self._records(values, self._values)
        if len(plain) != count:
            raise MapError(f"{self.name}: {count} keys but {len(plain)} values")
        records["v"] = plain[:, None]
        return records

    def _value_columns(
        self: Any, values: np.ndarray, per_cpu: bool, prefix: str
    ) -> dict[str, np.ndarray]:
        return percpu_columns(values["v"], self.value_type, self.cpus, prefix, per_cpu)

    def _zero_value(self) -> Any:
        return np.zeros(1, dtype=self.value_type.dtype)  # type: ignore[attr-defined]


class PerCpuHashMap(_PerCpu, HashMap):
    """``BPF_MAP_TYPE_PERCPU_HASH``."""


class LruPerCpuHashMap(_PerCpu, LruHashMap):
    """``BPF_MAP_TYPE_LRU_PERCPU_HASH``."""


class PerCpuArrayMap(_PerCpu, ArrayMap):
    """``BPF_MAP_TYPE_PERCPU_ARRAY``."""


class EventMap(Map):
    """A perf event array or ring buffer: its data arrives as events, not entries."""

    def snapshot(self, clear: bool = False, batch_size: int | None = None) -> Snapshot:
        raise MapError(
            f"{self.name}: a {self.type_name} map carries events, not entries; read it with "
            f"obj.stream({self.name!r})"
        )
