"""``LiveTable``: a map's ``to_frame()``, re-sorted at each refresh, optionally with deltas."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bpfnb.widgets._columns import key_columns, numeric_columns, value_column
from bpfnb.widgets._html import table_html
from bpfnb.widgets.view import LiveView

__all__ = ["LiveTable"]

DELTA = "Δ"  # prefix of the per-refresh delta columns, e.g. "Δvalue"


class LiveTable(LiveView):
    """A live table of a map: the top ``top`` rows of ``map.to_frame()`` sorted by ``sort_by``.

    ``sort_by`` defaults to the value column (a per-CPU map's total), largest first. With
    ``deltas=True`` each numeric value column ``c`` gets a ``Δc`` column: its change since the
    previous refresh, per key (the default sort is then by that change).
    """

    def __init__(
        self,
        map: Any,
        sort_by: str | None = None,
        top: int | None = 20,
        *,
        deltas: bool = False,
        ascending: bool = False,
        interval: float = 1.0,
        autostart: bool = True,
        owner: Any = None,
        close_source: bool = False,
    ) -> None:
        if top is not None and top <= 0:
            raise ValueError(f"top must be positive or None, got {top!r}")
        self.sort_by = sort_by
        self.top = top
        self.deltas = deltas
        self.ascending = ascending
        self._previous: pd.DataFrame | None = None
        super().__init__(
            map,
            interval=interval,
            autostart=autostart,
            owner=owner,
            close_source=close_source,
        )

    def _options(self) -> list[str]:
        parts = []
        if self.sort_by:
            parts.append(f"sort_by={self.sort_by!r}")
        parts.append(f"top={self.top}")
        if self.deltas:
            parts.append("deltas=True")
        return parts

    def _read(self) -> tuple[str, dict[str, Any]]:
        return ("to_frame", {})

    def _compute(self, frame: pd.DataFrame) -> pd.DataFrame:
        keys = key_columns(self.source, frame)
        if self.deltas:
            frame = self._with_deltas(frame, keys)
        sort_by = self.sort_by or self._default_sort(frame, keys)
        if sort_by is not None:
            if sort_by not in frame.columns:
                raise KeyError(f"sort_by={sort_by!r}: no such column in {list(frame.columns)}")
            # Equal changes (all of them, at the first refresh) fall back to the value's order.
            then = sort_by[len(DELTA) :] if sort_by.startswith(DELTA) else None
            frame = _sorted(frame, sort_by, keys, self.ascending, then)
        if self.top is not None:
            frame = frame.head(self.top)
        return frame.reset_index(drop=True)

    def _draw(self, data: pd.DataFrame) -> str:
        return table_html(data)

    def _default_sort(self, frame: pd.DataFrame, keys: list[str]) -> str | None:
        value = value_column(frame, keys)
        if value is not None and self.deltas and f"{DELTA}{value}" in frame.columns:
            return f"{DELTA}{value}"
        return value

    def _with_deltas(self, frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        values = numeric_columns(frame, keys)
        previous, self._previous = self._previous, frame[keys + values].copy()
        out = frame.copy()
        if previous is None or not keys:
            for col in values:
                out[f"{DELTA}{col}"] = 0
            return out
        hashable = [k for k in keys if frame[k].dtype != object or _scalars(frame[k])]
        merged = frame[hashable].merge(previous[hashable + values], on=hashable, how="left")
        for col in values:
            # Signed, so a counter that went down (a cleared map) shows a negative change; a key
            # new since the last refresh counts from zero.
            kind = np.float64 if frame[col].dtype.kind == "f" else np.int64
            before = merged[col].fillna(0).to_numpy().astype(kind)
            out[f"{DELTA}{col}"] = frame[col].to_numpy().astype(kind) - before
        return out


def _scalars(column: pd.Series) -> bool:
    return all(isinstance(v, (str, int, float, bytes)) for v in column.head(1))


def _sorted(
    frame: pd.DataFrame, by: str, keys: list[str], ascending: bool, then: str | None = None
) -> pd.DataFrame:
    # Ties break by key so equal counts keep a stable, readable order between refreshes.
    ties = [k for k in keys if k != by and (frame[k].dtype != object or _scalars(frame[k]))]
    order = [by] + ([then] if then is not None and then in frame.columns else [])
    try:
        return frame.sort_values(
            [*order, *ties],
            ascending=[ascending] * len(order) + [True] * len(ties),
            kind="stable",
        )
    except TypeError:
        return frame.sort_values(order, ascending=ascending, kind="stable")
