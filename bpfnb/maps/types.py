"""One ``Map`` subclass per kind of map, where the kind changes how entries behave."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bpfnb.errors import MapError
from bpfnb.frames import Layout, columns, percpu_columns
from bpfnb.lazy import lazy_import
from bpfnb.maps.base import Map
from bpfnb.maps.snapshot import Snapshot, update_batch
from bpfnb.sys import bpf
from bpfnb.sys.cpus import possible_cpus

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

__all__ = [
    "ArrayMap",
    "EventMap",
    "HashMap",
    "LpmTrieMap",
    "LruHashMap",
    "LruPerCpuHashMap",
    "PerCpuArrayMap",
    "PerCpuHashMap",
    "QueueMap",
    "StackMap",
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
            raise self._missing(key)
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
    """A perf event array or ring buffer: its data arrives as events, not entries.

    ``event_type`` is the event's :class:`~bpfnb.frames.Layout` when the loader knows it (bcc
    learns it from the program's submit calls); ``obj.stream(name)`` reads the events.
    """

    event_type: Layout | None = None
    #: Why ``event_type`` is unknown, when it is.
    event_type_note: str = ""

    def snapshot(self, clear: bool = False, batch_size: int | None = None) -> Snapshot:
        raise MapError(
            f"{self.name}: a {self.type_name} map carries events, not entries; read it with "
            f"obj.stream({self.name!r})"
        )


class QueueMap(Map):
    """``BPF_MAP_TYPE_QUEUE``: values without keys, first in first out.

    :meth:`push`, :meth:`pop` and :meth:`peek` work on one value; :meth:`to_frame` reads them
    all, which empties the map unless it puts them back (``drain=False``, the default).
    """

    def _no_keys(self, *_: Any) -> Any:
        raise MapError(
            f"{self.name}: a {self.type_name} map has no keys; use push(), pop(), peek() or "
            "to_frame()"
        )

    __getitem__ = __setitem__ = __delitem__ = _no_keys

    def __contains__(self, key: object) -> bool:
        return bool(self._no_keys())

    def __iter__(self) -> Any:
        return self._no_keys()

    def __len__(self) -> int:
        # The kernel keeps no count a reader could ask for: counting means popping everything.
        return len(self._pop_all(restore=True))

    def snapshot(self, clear: bool = False, batch_size: int | None = None) -> Snapshot:
        values = self._pop_all(restore=not clear)
        return Snapshot(np.zeros(len(values), dtype=np.uint32), values, batched=False)

    def push(self, value: Any, overwrite: bool = False) -> None:
        """Add ``value``; when the map is full, ``overwrite=True`` drops the oldest (BPF_EXIST),
        else :class:`MapError`."""
        try:
            bpf.map_update(
                self.fd, None, self._pack_value(value), bpf.BPF_EXIST if overwrite else 0
            )
        except OSError as err:
            raise self._error(err, "pushing", value) from err

    def pop(self) -> Any:  # type: ignore[override]  # a queue pops values, not keys
        """Remove and return the next value; ``KeyError`` when the map is empty."""
        record = np.zeros(1, dtype=self._record_dtype)
        if not bpf.map_lookup_and_delete(self.fd, None, record):
            raise KeyError(f"{self.name} is empty")
        return self._unpack_value(record)

    def peek(self) -> Any:
        """The next value, left in place; ``KeyError`` when the map is empty."""
        record = np.zeros(1, dtype=self._record_dtype)
        if not bpf.map_lookup(self.fd, None, record):
            raise KeyError(f"{self.name} is empty")
        return self._unpack_value(record)

    def clear(self) -> None:
        self._pop_all(restore=False)

    def to_frame(self, per_cpu: bool = True, clear: bool = False, drain: bool = False) -> Any:
        """Every value, in the order :meth:`pop` returns them, as a DataFrame.

        Reading a queue or stack pops it. With ``drain`` (or ``clear``) the values stay out;
        by default they are pushed back in the same order, which is not atomic: a program that
        pushes meanwhile interleaves. ``frame.attrs["drained"]`` says which happened.
        """
        drained = drain or clear
        values = self._pop_all(restore=not drained)
        frame = pd.DataFrame(columns(values, self.value_type, "value"), copy=False)
        frame.attrs["drained"] = drained
        return frame

    def _pop_all(self, restore: bool) -> np.ndarray:
        popped = []
        while True:
            record = np.zeros(1, dtype=self._record_dtype)
            if not bpf.map_lookup_and_delete(self.fd, None, record):
                break
            popped.append(record)
        values = np.concatenate(popped) if popped else np.zeros(0, dtype=self._record_dtype)
        if restore:
            for record in self._restore_order(values):
                bpf.map_update(self.fd, None, record[None])
        return values

    def _restore_order(self, values: np.ndarray) -> np.ndarray:
        return values  # a queue pops oldest first: pushing in that order rebuilds it


class StackMap(QueueMap):
    """``BPF_MAP_TYPE_STACK``: values without keys, last in first out (see :class:`QueueMap`)."""

    def _restore_order(self, values: np.ndarray) -> np.ndarray:
        return values[::-1]  # a stack pops newest first: push the oldest back first
