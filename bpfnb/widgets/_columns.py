"""Which columns of a map's frame are its key and which value a view should plot or sort by."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["key_columns", "numeric_columns", "value_column"]


def key_columns(source: Any, data: pd.DataFrame) -> list[str]:
    """The columns of ``data`` that come from the map's key."""
    named = [c for c in data.columns if c == "key" or str(c).startswith("key.")]
    if named:
        return named
    layout = getattr(source, "key_type", None)
    dtype = getattr(layout, "dtype", None)
    if layout is not None and dtype is not None:
        from bpfnb.frames import columns

        fields = list(columns(np.zeros(0, dtype=dtype), layout))
        found = [c for c in fields if c in data.columns]
        if found:
            return found
    return [c for c in data.columns if not _is_numeric(data[c])]


def numeric_columns(data: pd.DataFrame, exclude: list[str]) -> list[str]:
    return [c for c in data.columns if c not in exclude and _is_numeric(data[c])]


def value_column(data: pd.DataFrame, keys: list[str]) -> str | None:
    """The value column to sort or plot by: a per-CPU total, else ``value``/``count``, else the
    last numeric column that is not part of the key."""
    numeric = numeric_columns(data, keys)
    for preferred in ("total", "value.total", "value", "count"):
        if preferred in numeric:
            return preferred
    totals = [c for c in numeric if str(c).endswith(".total") or str(c).endswith("total")]
    if totals:
        return totals[-1]
    return numeric[-1] if numeric else None


def _is_numeric(column: pd.Series) -> bool:
    return column.dtype.kind in "iuf"
