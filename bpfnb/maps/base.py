"""``Map``: one mapping interface and one ``to_frame()`` over any BPF map fd.

Reads and writes go through :mod:`bpfnb.sys` (never bcc's per-key table methods); whole-map
reads go through :func:`bpfnb.maps.snapshot.read_all`, one batch syscall per buffer.
"""

from __future__ import annotations

import errno
import weakref
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import numpy as np

from bpfnb.closing import Closing
from bpfnb.errors import MapError, MissingKeyError
from bpfnb.frames import Layout, columns
from bpfnb.lazy import lazy_import
from bpfnb.maps.convert import Codec
from bpfnb.maps.histogram import histogram_frame, print_histogram
from bpfnb.maps.snapshot import Snapshot, read_all, update_batch
from bpfnb.sys import FD, MapType, bpf
from bpfnb.sys.constants import lower_name, member_or_int

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

__all__ = ["Map"]


class Map(Closing, MutableMapping[Any, Any]):
    """A BPF map: ``m[key]``, ``m[key] = value``, ``del m[key]``, ``in``, iteration, ``len``.

    Keys and values are given and returned as described in :mod:`bpfnb.maps.convert`; a missing
    key raises ``KeyError``. :meth:`to_frame` reads every entry at once into a DataFrame.
    Make one with :func:`bpfnb.maps.open_map` or :func:`bpfnb.maps.from_bcc_table`.
    """

    #: Whether each value has one slot per possible CPU.
    per_cpu = False

    def __init__(
        self,
        fd: int | FD,
        *,
        name: str,
        map_type: int,
        key: Layout,
        value: Layout,
        max_entries: int,
        flags: int = 0,
        owns_fd: bool = True,
    ) -> None:
        self._owned = (fd if isinstance(fd, FD) else FD(int(fd))) if owns_fd else None
        self._fd = int(fd)
        self._closed = False
        self.name = name
        self.type: MapType | int = member_or_int(MapType, map_type)
        self.type_name = lower_name(MapType, map_type)
        self.key_type = key
        self.value_type = value
        self.max_entries = max_entries
        self.flags = flags
        self._keys = Codec(key, "key")
        self._values = Codec(value, "value")
        self._record_dtype = self._value_record_dtype()
        self._owner: weakref.ref[Any] | None = None

    def _value_record_dtype(self) -> np.dtype:
        # What the kernel copies for one value; per-CPU maps override.
        return self.value_type.dtype

    # -- identity --------------------------------------------------------------------------------

    @property
    def fd(self) -> int:
        """The map's file descriptor."""
        if self._closed:
            raise MapError(f"map {self.name!r} is closed")
        return self._fd

    @property
    def key_type_name(self) -> str:
        """The key's C type, e.g. ``u32`` or ``struct key_t``."""
        return self.key_type.type_name

    @property
    def value_type_name(self) -> str:
        """The value's C type (for per-CPU maps, one CPU's value)."""
        return self.value_type.type_name

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def owner(self) -> Any:
        """The :class:`bpfnb.BpfObject` this map belongs to (None when standalone or gone)."""
        return self._owner() if self._owner is not None else None

    @owner.setter
    def owner(self, obj: Any) -> None:
        # A weak reference: the object holds its maps, not the other way round.
        self._owner = weakref.ref(obj) if obj is not None else None

    def close(self) -> None:
        """Close the fd if this Map owns it. Idempotent."""
        self._closed = True
        if self._owned is not None:
            self._owned.close()

    # A Map is a live kernel object: equal only to itself (Mapping would compare contents).
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        return (
            f"<{type(self).__name__} {self.name!r} [{self.type_name}] {self.key_type_name} -> "
            f"{self.value_type_name}, max_entries={self.max_entries}{state}>"
        )

    # -- one entry -------------------------------------------------------------------------------

    def _key(self, key: Any) -> np.ndarray:
        return self._keys.pack(key)

    def _pack_value(self, value: Any) -> np.ndarray:
        return self._values.pack(value)

    def _unpack_value(self, record: np.ndarray) -> Any:
        return self._values.unpack(record)[0]

    def _lookup(self, key: Any) -> np.ndarray | None:
        record = np.zeros(1, dtype=self._record_dtype)
        try:
            found = bpf.map_lookup(self.fd, self._key(key), record)
        except OSError as err:
            raise self._error(err, "looking up", key) from err
        return record if found else None

    def __getitem__(self, key: Any) -> Any:
        record = self._lookup(key)
        if record is None:
            raise self._missing(key)
        return self._unpack_value(record)

    def _missing(self, key: Any) -> MissingKeyError:
        # The key as the map reads it: a ctypes or numpy key shows its fields.
        try:
            shown = self._keys.unpack(self._key(key))[0]
        except Exception:  # noqa: BLE001 - an unreadable key is shown as given
            shown = key
        return MissingKeyError(f"{self.name} has no key {shown!r}")

    def __contains__(self, key: object) -> bool:
        return self._lookup(key) is not None

    def __setitem__(self, key: Any, value: Any) -> None:
        packed_key, packed_value = self._key(key), self._pack_value(value)
        try:
            bpf.map_update(self.fd, packed_key, packed_value)
        except OSError as err:
            raise self._error(err, "updating", key) from err

    def __delitem__(self, key: Any) -> None:
        try:
            deleted = bpf.map_delete(self.fd, self._key(key))
        except OSError as err:
            raise self._error(err, "deleting", key) from err
        if not deleted:
            raise self._missing(key)

    def _error(self, err: OSError, action: str, key: Any) -> Exception:
        if err.errno == errno.E2BIG:
            return MapError(f"{self.name}: full ({self.max_entries} entries) when {action} {key!r}")
        if err.errno in (errno.EINVAL, errno.EOPNOTSUPP, 524):
            return MapError(f"{self.name}: a {self.type_name} map does not support {action} keys")
        return err

    # -- the whole map ---------------------------------------------------------------------------

    def snapshot(self, clear: bool = False, batch_size: int | None = None) -> Snapshot:
        """Every entry as numpy records (keys and raw values); ``clear`` also empties the map."""
        return read_all(
            self.fd,
            self.key_type.dtype,
            self._record_dtype,
            self.max_entries,
            delete=clear,
            batch_size=batch_size,
        )

    def __iter__(self) -> Iterator[Any]:
        return iter(self._keys.unpack(self.snapshot().keys))

    def __len__(self) -> int:
        return len(self.snapshot())

    def keys(self) -> list[Any]:  # type: ignore[override]
        """Every key, read in one batch."""
        return self._keys.unpack(self.snapshot().keys)

    def values(self) -> list[Any]:  # type: ignore[override]
        """Every value, read in one batch."""
        return self._unpack_values(self.snapshot().values)

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        """Every (key, value) pair, read in one batch."""
        snap = self.snapshot()
        return list(zip(self._keys.unpack(snap.keys), self._unpack_values(snap.values)))

    def _unpack_values(self, records: np.ndarray) -> list[Any]:
        return self._values.unpack(records)

    def clear(self) -> None:
        """Remove every entry (batch delete where the kernel has it)."""
        self.snapshot(clear=True)

    def update_batch(self, keys: Any, values: Any) -> int:
        """Write many entries at once (BPF_MAP_UPDATE_BATCH) from arrays or sequences.

        ``keys``/``values`` are numpy arrays of the key/value dtypes (or plain numbers for
        scalar types), or sequences of anything ``m[k] = v`` accepts. Returns the count written.
        """
        key_records = self._records(keys, self._keys)
        value_records = self._value_records(values, len(key_records))
        try:
            return update_batch(self.fd, key_records, value_records)
        except OSError as err:
            raise self._error(err, "batch updating", f"{len(key_records)} keys") from err

    def _records(self, items: Any, codec: Codec) -> np.ndarray:
        dtype = codec.dtype
        if isinstance(items, np.ndarray):
            if items.dtype == dtype:
                return items
            if items.dtype.itemsize == dtype.itemsize and (items.dtype.names or dtype.names):
                return items.view(dtype)
            if not dtype.names and not items.dtype.names and dtype.kind in "iuf":
                return items.astype(dtype)
        items = list(items)
        if not items:
            return np.zeros(0, dtype=dtype)
        return np.concatenate([codec.pack(item) for item in items])

    def _value_records(self, values: Any, count: int) -> np.ndarray:
        records = self._records(values, self._values)
        if len(records) != count:
            raise MapError(f"{self.name}: {count} keys but {len(records)} values")
        return records

    def to_frame(self, per_cpu: bool = True, clear: bool = False) -> pd.DataFrame:
        """Every entry as a DataFrame, read with the batch syscalls.

        Scalar keys and values are the columns ``key`` and ``value``; struct fields are columns
        named after the C fields (dotted when nested); when a value field has the name of a key
        field, every value column is prefixed ``value.``. Per-CPU maps add ``<name>.cpu<N>``
        columns beside each total unless ``per_cpu=False``. ``clear=True`` empties the map
        while reading it (BPF_MAP_LOOKUP_AND_DELETE_BATCH), so counts are not lost in between.
        """
        return self._frame(self.snapshot(clear=clear), per_cpu)

    def _frame(self, snap: Snapshot, per_cpu: bool) -> pd.DataFrame:
        data = self._key_columns(snap.keys)
        values = self._value_columns(snap.values, per_cpu, self._value_prefix(data))
        data.update(values)
        return pd.DataFrame(data, copy=False)

    def _key_columns(self, keys: np.ndarray) -> dict[str, np.ndarray]:
        return columns(keys, self.key_type, "" if self.key_type.dtype.names else "key")

    def _value_prefix(self, key_columns: dict[str, np.ndarray]) -> str:
        if not self.value_type.dtype.names:
            return "value"
        names = set(columns(np.zeros(0, self.value_type.dtype), self.value_type))
        return "value" if names & set(key_columns) else ""

    def _value_columns(
        self, values: np.ndarray, per_cpu: bool, prefix: str
    ) -> dict[str, np.ndarray]:
        return columns(values, self.value_type, prefix)

    # -- histograms ------------------------------------------------------------------------------

    def to_histogram(
        self,
        kind: str = "log2",
        bucket: str | None = None,
        slot: str | None = None,
        unit: str | None = None,
    ) -> pd.DataFrame:
        """The map as a histogram: one row per slot with ``low``, ``high`` and ``count``.

        For bcc ``BPF_HISTOGRAM``s and the like: the key is the slot (``bpf_log2l()`` of a value
        for ``kind="log2"``, the value itself for ``"linear"``) and the value is the count.
        When the key is a struct, its ``bucket`` field (default: the first) names a section
        and its ``slot`` field (default: the next) is the slot; the frame then starts with the
        bucket column, one histogram per bucket. With a ``unit`` (``"ns"``, ``"us"``, ``"ms"``,
        ``"bytes"``, as bcc's ``val_type`` names them), a ``range`` column labels each bucket
        (``"512 ms – 1.07 s"``).
        """
        return histogram_frame(self, kind, bucket=bucket, slot=slot, unit=unit)

    def print_log2_hist(
        self,
        val_type: str = "value",
        section_header: str = "Bucket ptr",
        section_print_fn: Any = None,
        strip_leading_zero: bool = False,
        unit: str | None = None,
    ) -> None:
        """Print the log2 histogram as ASCII art, as bcc's ``print_log2_hist`` does; with a
        ``unit`` the buckets read as times or sizes."""
        print_histogram(
            self.to_histogram("log2"),
            "log2",
            val_type,
            section_header,
            section_print_fn,
            strip_leading_zero,
            unit,
        )

    def print_linear_hist(
        self,
        val_type: str = "value",
        section_header: str = "Bucket ptr",
        section_print_fn: Any = None,
        strip_leading_zero: bool = False,
        unit: str | None = None,
    ) -> None:
        """Print the linear histogram as ASCII art, as bcc's ``print_linear_hist`` does; with a
        ``unit`` the buckets read as times or sizes."""
        print_histogram(
            self.to_histogram("linear"),
            "linear",
            val_type,
            section_header,
            section_print_fn,
            strip_leading_zero,
            unit,
        )
