"""Which columns of a map's frame are its key and which value a view should plot or sort by."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.frames import columns

__all__ = ["key_columns", "numeric_columns", "value_column"]

_PER_CPU = re.compile(r"\.cpu\d+$")  # Map.to_frame()'s per-CPU columns beside each total


def key_columns(source: Any, data: pd.DataFrame) -> list[str]:
    """The columns of ``data`` that name a row: the map's key, after the columns a source says
    label its rows besides (``label_columns``: a cluster map's ``host`` and ``engine``)."""
    labels = [c for c in getattr(source, "label_columns", ()) if c in data.columns]
    return labels + [c for c in _map_key_columns(source, data) if c not in labels]


def _map_key_columns(source: Any, data: pd.DataFrame) -> list[str]:
    named = [c for c in data.columns if c == "key" or str(c).startswith("key.")]
    if named:
        return named
    layout = getattr(source, "key_type", None)
    dtype = getattr(layout, "dtype", None)
    if layout is not None and dtype is not None:
        fields = list(columns(np.zeros(0, dtype=dtype), layout))
        found = [c for c in fields if c in data.columns]
        if found:
            return found
    return [c for c in data.columns if not _is_numeric(data[c])]


def numeric_columns(data: pd.DataFrame, exclude: list[str]) -> list[str]:
    return [c for c in data.columns if c not in exclude and _is_numeric(data[c])]


def value_column(data: pd.DataFrame, keys: list[str]) -> str | None:
    """The value column to sort or plot by: ``value`` (a per-CPU map's total), else ``count`` or
    ``total``, else the first numeric field of the value (its per-CPU columns left out)."""
    numeric = [c for c in numeric_columns(data, keys) if not _PER_CPU.search(str(c))]
    for preferred in ("value", "count", "total"):
        if preferred in numeric:
            return preferred
    return numeric[0] if numeric else None


def _is_numeric(column: pd.Series) -> bool:
    return column.dtype.kind in "iuf"
