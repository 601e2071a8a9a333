"""Read a whole map into numpy arrays with ``BPF_MAP_LOOKUP_BATCH``, one syscall per batch.

Keys and values land straight in arrays typed by the map's structured dtypes, so no Python
object is made per entry. Key-by-key reading is the fallback only when the kernel or the map
type has no batch operations (before Linux 5.6, commit cb4d03ab499d "bpf: Add generic support
for lookup batch op"; stack-trace maps still have none). When a hash bucket holds more entries
than the space left (ENOSPC) the buffers grow and the same batch is asked again.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

import numpy as np

from bpfnb.sys import bpf

__all__ = ["Snapshot", "read_all", "update_batch"]

# What the kernel says when it has no batch op for this map type (or no batch commands at all):
# ENOTSUPP (524, kernel-internal but it leaks to user space), EOPNOTSUPP, EINVAL (unknown cmd).
_NO_BATCH = {524, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS}
# Start with room for every entry, up to this many bytes; a larger map grows as it is read.
_FIRST_BUFFER_BYTES = 64 << 20


@dataclass
class Snapshot:
    """Every entry of a map at one moment: ``keys[i]`` maps to ``values[i]``."""

    keys: np.ndarray
    values: np.ndarray
    batched: bool  # read with the batch syscalls (False: key by key)
    grown: int = 0  # how often a bucket did not fit (ENOSPC) and the buffers grew

    def __len__(self) -> int:
        return len(self.keys)


def read_all(
    fd: int,
    key_dtype: np.dtype,
    value_dtype: np.dtype,
    max_entries: int,
    *,
    delete: bool = False,
    batch_size: int | None = None,
) -> Snapshot:
    """Every entry of map ``fd``; with ``delete``, also remove what was read.

    ``value_dtype`` is one map value (for per-CPU maps, a subarray of one slot per CPU).
    ``batch_size`` caps the first buffer, in entries (tests use it to provoke ENOSPC).
    """
    entry = key_dtype.itemsize + value_dtype.itemsize
    # One spare slot: a full map then ends in the first call (ENOENT) instead of a second one
    # after growing the buffers.
    capacity = max(1, min((max_entries or 0) + 1, _FIRST_BUFFER_BYTES // entry))
    if batch_size is not None:
        capacity = max(1, batch_size)
    keys = np.empty(capacity, dtype=key_dtype)
    values = np.empty(capacity, dtype=value_dtype)
    # The batch token is a hash bucket index (u32) or, for arrays and tries, a key.
    tokens = [np.zeros(max(key_dtype.itemsize, 8), np.uint8) for _ in range(2)]
    filled = grown = 0
    first = True
    while True:
        if filled == len(keys):
            keys, values = _grow(keys, values)
        try:
            result = bpf.map_lookup_batch(
                fd,
                None if first else tokens[0],
                tokens[1],
                keys[filled:],
                values[filled:],
                len(keys) - filled,
                delete=delete,
            )
        except OSError as err:
            if err.errno == errno.ENOSPC:
                keys, values = _grow(keys, values)
                grown += 1
                continue
            if first and err.errno in _NO_BATCH:
                return _read_key_by_key(fd, key_dtype, value_dtype, delete)
            raise
        filled += result.count
        if result.done:
            break
        first = False
        tokens.reverse()
    if filled < len(keys) // 4:  # don't keep a mostly empty buffer alive
        return Snapshot(keys[:filled].copy(), values[:filled].copy(), True, grown)
    return Snapshot(keys[:filled], values[:filled], True, grown)


def _grow(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    bigger_keys = np.empty(len(keys) * 2, dtype=keys.dtype)
    bigger_values = np.empty((len(values) * 2, *values.shape[1:]), dtype=values.dtype)
    bigger_keys[: len(keys)] = keys
    bigger_values[: len(values)] = values
    return bigger_keys, bigger_values


def _read_key_by_key(fd: int, key_dtype: np.dtype, value_dtype: np.dtype, delete: bool) -> Snapshot:
    found: list[bytes] = []
    key = np.zeros(1, dtype=key_dtype)
    next_key = np.zeros(1, dtype=key_dtype)
    previous = None
    while bpf.map_get_next_key(fd, previous, next_key):
        found.append(next_key.tobytes())
        key[:] = next_key
        previous = key
    keys = np.frombuffer(b"".join(found), dtype=key_dtype).copy()
    values = np.zeros(len(found), dtype=value_dtype)
    present = np.ones(len(found), dtype=bool)
    for i in range(len(found)):
        # An entry deleted since the walk saw it is left out.
        present[i] = bpf.map_lookup(fd, keys[i : i + 1], values[i : i + 1])
        if delete and present[i]:
            bpf.map_delete(fd, keys[i : i + 1])
    if not present.all():
        keys, values = keys[present], values[present]
    return Snapshot(keys, values, False)


def update_batch(fd: int, keys: np.ndarray, values: np.ndarray, flags: int = 0) -> int:
    """Write ``keys[i] → values[i]`` with BPF_MAP_UPDATE_BATCH (key by key where unsupported).

    Returns how many entries were written.
    """
    if len(keys) != len(values):
        raise ValueError(f"{len(keys)} keys but {len(values)} values")
    keys = np.ascontiguousarray(keys)
    values = np.ascontiguousarray(values)
    done = 0
    while done < len(keys):
        try:
            done += bpf.map_update_batch(fd, keys[done:], values[done:], len(keys) - done, flags)
        except OSError as err:
            if done == 0 and err.errno in _NO_BATCH:
                for i in range(len(keys)):
                    bpf.map_update(fd, keys[i : i + 1], values[i : i + 1], flags)
                return len(keys)
            raise
    return done
