"""Stack-trace maps, joined with the map that counts stack ids, as symbolised stacks.

A ``BPF_MAP_TYPE_STACK_TRACE`` value is an array of instruction pointers, innermost first,
ending at the first zero. Kernel addresses are named from ``/proc/kallsyms``, user addresses
from the process's mapped ELF files (:mod:`bpfnb.maps.symbols`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from bpfnb.errors import MapError
from bpfnb.lazy import lazy_import
from bpfnb.maps.base import Map
from bpfnb.maps.symbols import kernel_symbols, user_symbolizer

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

__all__ = ["UNKNOWN", "StackTraceMap"]

#: Marks a stack the kernel could not take (a negative stack id, such as -EFAULT).
UNKNOWN = "[unknown]"


class StackTraceMap(Map):
    """``BPF_MAP_TYPE_STACK_TRACE``: stack id → instruction pointers (innermost first)."""

    @property
    def depth(self) -> int:
        """How many frames one stack holds."""
        return self.value_type.size // 8

    def addresses(self, stack_id: int) -> list[int]:
        """The instruction pointers of one stack, innermost first; ``KeyError`` if absent."""
        record = self._lookup(stack_id)
        if record is None:
            raise self._missing(stack_id)
        ips = record.view(np.uint64)
        end = np.flatnonzero(ips == 0)
        return ips[: end[0] if len(end) else len(ips)].tolist()

    def _ips(self) -> dict[int, list[int]]:
        snap = self.snapshot()
        ids = snap.keys.view(np.int32 if snap.keys.dtype.itemsize == 4 else np.int64)
        ips = snap.values.view(np.uint64).reshape(len(ids), -1)
        out: dict[int, list[int]] = {}
        for stack_id, row in zip(ids.tolist(), ips, strict=True):
            end = np.flatnonzero(row == 0)
            out[stack_id] = row[: end[0] if len(end) else len(row)].tolist()
        return out

    def symbolize(self, stack_id: int, pid: int | None = None) -> list[str]:
        """One stack's frames, root first: kernel symbols, or user symbols of process ``pid``."""
        name = user_symbolizer(pid) if pid is not None else kernel_symbols().name
        return [name(ip) for ip in reversed(self.addresses(stack_id))]

    def stacks(
        self,
        counts: Map | pd.DataFrame,
        *,
        user_stack: str | None = "user_stack_id",
        kernel_stack: str | None = "kernel_stack_id",
        pid: str | None = "pid",
        count: str = "value",
    ) -> pd.DataFrame:
        """Join ``counts`` (a map or frame keyed by stack ids) with this map's stacks.

        Returns ``counts``' frame plus a ``stack`` column: a tuple of frame names, root first,
        user frames then kernel frames, ready for :func:`bpfnb.plots.flamegraph`. Struct keys
        give the stack ids in their ``user_stack``/``kernel_stack`` fields (and the process in
        ``pid``, to name user frames). A scalar key is a kernel stack id, in a column
        ``stack_id`` (pass ``user_stack="stack_id", pid=...`` for a user one). The count column
        is renamed ``count``. Negative stack ids (the kernel could not take the stack) are left
        out of the tuple; a row with none left is ``("[unknown]",)``.
        """
        frame = counts.to_frame() if isinstance(counts, Map) else counts.copy()
        if count in frame.columns and count != "count":
            frame = frame.rename(columns={count: "count"})
        if "key" in frame.columns:  # a scalar key is the stack id itself
            frame = frame.rename(columns={"key": "stack_id"})
            if user_stack != "stack_id":
                kernel_stack = "stack_id"
        user_col = user_stack if user_stack in frame.columns else None
        kernel_col = kernel_stack if kernel_stack in frame.columns else None
        if user_col is None and kernel_col is None:
            raise MapError(
                f"{self.name}: no stack id column in {list(frame.columns)}; name it with "
                "user_stack=... or kernel_stack=..."
            )
        ips = self._ips()
        pid_col = pid if pid is not None and pid in frame.columns else None
        users: dict[int, Callable[[int], str]] = {}
        kernel = kernel_symbols()

        def user_name(process: int) -> Callable[[int], str]:
            if process not in users:
                users[process] = user_symbolizer(process)
            return users[process]

        result: list[tuple[str, ...]] = []
        n = len(frame)
        user_ids = frame[user_col].tolist() if user_col else [None] * n
        kernel_ids = frame[kernel_col].tolist() if kernel_col else [None] * n
        pids = frame[pid_col].tolist() if pid_col else [-1] * n
        named: dict[tuple[Any, Any, Any], tuple[str, ...]] = {}  # rows share stacks
        for user_id, kernel_id, process in zip(user_ids, kernel_ids, pids, strict=True):
            key = (user_id, kernel_id, process if user_id is not None else None)
            if key not in named:
                names: list[str] = []
                if user_id is not None:
                    names += _named(ips, user_id, user_name(int(process)))
                if kernel_id is not None:
                    names += _named(ips, kernel_id, kernel.name)
                named[key] = tuple(names) or (UNKNOWN,)
            result.append(named[key])
        frame["stack"] = result
        return frame

    def to_frame(self, per_cpu: bool = True, clear: bool = False) -> pd.DataFrame:
        """One row per stack: ``stack_id`` and ``addresses`` (innermost first)."""
        if clear:
            raise MapError(f"{self.name}: stack-trace maps are cleared with clear()")
        ips = self._ips()
        column = np.empty(len(ips), dtype=object)
        column[:] = [np.array(v, dtype=np.uint64) for v in ips.values()]
        return pd.DataFrame({"stack_id": list(ips), "addresses": column})


def _named(ips: dict[int, list[int]], stack_id: Any, name: Callable[[int], str]) -> list[str]:
    stack_id = int(stack_id)
    if stack_id < 0 or stack_id not in ips:
        return [] if stack_id < 0 else [UNKNOWN]
    return [name(ip) for ip in reversed(ips[stack_id])]
