"""Per-CPU values → columns: one per CPU, plus the total under the plain name.

Rule, per column of the value (a scalar, or each field of a struct):
- numbers (and bitfields) are summed across CPUs into ``name`` (in 64 bits, so the total of
  ``u32`` counters does not wrap), and each CPU's own value is ``name.cpu<N>``;
- arrays are summed element by element the same way;
- strings cannot be summed: ``name`` is the first CPU's value and no per-CPU columns are made.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bpfnb.frames.layout import Layout
from bpfnb.frames.table import columns

__all__ = ["percpu_columns"]


def _total(stack: list[np.ndarray]) -> np.ndarray:
    first = stack[0]
    if first.dtype.kind in "ub":
        return np.add.reduce(np.stack(stack), axis=0, dtype=np.uint64)
    if first.dtype.kind == "i":
        return np.add.reduce(np.stack(stack), axis=0, dtype=np.int64)
    if first.dtype.kind == "f":
        return np.add.reduce(np.stack(stack), axis=0, dtype=np.float64)
    total = np.empty(len(first), dtype=object)
    for row in range(len(first)):
        total[row] = np.add.reduce([np.asarray(col[row], dtype=np.float64) for col in stack])
        if np.asarray(first[row]).dtype.kind in "iu":
            total[row] = total[row].astype(np.asarray(first[row]).dtype)
    return total


def percpu_columns(
    values: np.ndarray,
    layout: Layout,
    cpus: Sequence[int],
    prefix: str = "",
    per_cpu: bool = True,
) -> dict[str, np.ndarray]:
    """Columns for ``values`` of shape ``(entries, len(cpus))`` and dtype ``layout.dtype``."""
    per = [columns(values[:, i], layout, prefix) for i in range(len(cpus))]
    out: dict[str, np.ndarray] = {}
    for name, first in per[0].items():
        stack = [cols[name] for cols in per]
        if first.dtype == object and len(first) and isinstance(first[0], str):
            out[name] = first
            continue
        out[name] = _total(stack) if len(first) else first
        if per_cpu:
            for cpu, column in zip(cpus, stack, strict=True):
                out[f"{name}.cpu{cpu}"] = column
    return out
