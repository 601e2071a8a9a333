"""Structured numpy records → named pandas columns, vectorised (no Python object per row)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bpfnb.frames.layout import Layout
from bpfnb.lazy import lazy_import

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

__all__ = ["ANONYMOUS_PREFIX", "HIDDEN_PREFIXES", "columns", "frame"]

#: Fields that are not columns: bitfield storage (decoded into one column per bitfield) and the
#: ``__pad_N`` members bcc adds to make padding explicit.
HIDDEN_PREFIXES = ("_bits", "__pad_")
#: How bcc names unnamed struct/union members; their fields are named as the parent's, as in C.
ANONYMOUS_PREFIX = "__anon"


def _visible(dotted: str) -> str:
    return ".".join(part for part in dotted.split(".") if not part.startswith(ANONYMOUS_PREFIX))


def _decode_strings(values: np.ndarray) -> np.ndarray:
    # A C string ends at its first NUL, even when bytes follow (a reused comm buffer): zero the
    # tail where a NUL is followed by anything, and numpy's 'S' type drops trailing NULs itself.
    width = values.dtype.itemsize
    if not len(values):
        return np.empty(0, dtype=object)
    raw = np.ascontiguousarray(values).view(np.uint8).reshape(len(values), width)
    nul = raw == 0
    if (nul[:, :-1] & ~nul[:, 1:]).any():
        raw = np.where(np.logical_or.accumulate(nul, axis=1), np.uint8(0), raw)
    # Strings in events and maps repeat (comm, paths): decode each distinct one once.
    codes, rows = _distinct_rows(raw)
    distinct = np.ascontiguousarray(raw[rows])
    text = distinct.view(f"S{width}").ravel()
    if distinct.max(initial=0) < 0x80:  # ASCII (nearly always): numpy converts it in C
        decoded = text.astype(f"U{width}").astype(object)
    else:
        decoded = np.empty(len(text), dtype=object)
        decoded[:] = [item.decode("utf-8", "replace") for item in text.tolist()]
    return decoded[codes]


def _distinct_rows(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # (code of each row, one row index per code), hashing 8 bytes at a time with pandas.
    count, width = raw.shape
    words = np.zeros((count, -(-width // 8) * 8), dtype=np.uint8)
    words[:, :width] = raw
    codes = np.zeros(count, dtype=np.int64)
    for column in words.view("<u8").T:
        part, uniques = pd.factorize(column)
        codes, _ = pd.factorize(codes * len(uniques) + part)
    rows = np.empty(codes.max() + 1, dtype=np.int64)
    rows[codes] = np.arange(count)  # any row of a code will do: they hold the same bytes
    return codes, rows


def _flatten(values: np.ndarray, dtype: np.dtype, name: str, out: dict[str, np.ndarray]) -> None:
    if dtype.names and dtype.fields:
        for field in dtype.names:
            if not field.startswith(HIDDEN_PREFIXES):
                sub = dtype.fields[field][0]
                anonymous = field.startswith(ANONYMOUS_PREFIX) and sub.names
                dotted = name if anonymous else (f"{name}.{field}" if name else field)
                _flatten(values[field], sub, dotted, out)
        return
    if dtype.kind == "S":
        out[name] = _decode_strings(values)
    elif dtype.subdtype is not None or values.ndim > 1:
        column = np.empty(len(values), dtype=object)
        column[:] = list(values)
        out[name] = column
    else:
        out[name] = values


def columns(records: np.ndarray, layout: Layout, prefix: str = "") -> dict[str, np.ndarray]:
    """Named 1-D columns for ``records`` of ``layout.dtype``.

    Scalars are named ``prefix``; struct fields by their C names (dotted when nested), each
    under ``prefix.`` when a prefix is given.
    """
    out: dict[str, np.ndarray] = {}
    _flatten(records, layout.dtype, prefix, out)
    for bits in layout.bitfields:
        storage = records
        for part in bits.storage.split("."):
            storage = storage[part]
        mask = (1 << bits.width) - 1
        name = f"{prefix}.{_visible(bits.name)}" if prefix else _visible(bits.name)
        out[name] = (storage.astype(np.uint64) >> np.uint64(bits.shift)) & np.uint64(mask)
    return out


def frame(records: np.ndarray, layout: Layout, prefix: str = "") -> pd.DataFrame:
    """A DataFrame with one column per field of ``records`` (see :func:`columns`)."""
    return pd.DataFrame(columns(records, layout, prefix), copy=False)
