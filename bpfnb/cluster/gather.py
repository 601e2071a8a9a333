"""Engines' frames made one: ``host`` and ``engine`` columns first, histograms aligned by bucket.

Pure functions over DataFrames, so they are tested without a cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bpfnb.lazy import lazy_import

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

__all__ = ["LABELS", "Part", "histograms", "labelled"]

#: The columns that say where a gathered row comes from.
LABELS = ("host", "engine")

#: One engine's frame: (host, engine id, frame).
Part = tuple[str, int, "pd.DataFrame"]


def labelled(parts: list[Part]) -> pd.DataFrame:
    """The engines' frames one after the other, each row labelled with its host and engine."""
    frames = []
    for host, engine, frame in parts:
        frame = frame.reset_index(drop=True)
        frame.insert(0, "engine", np.full(len(frame), engine, dtype=np.int64))
        frame.insert(0, "host", np.full(len(frame), host, dtype=object))
        frames.append(frame)
    if not frames:
        return pd.DataFrame({"host": pd.Series(dtype=object), "engine": pd.Series(dtype=np.int64)})
    return pd.concat(frames, ignore_index=True)


def histograms(parts: list[Part], merged: bool = False) -> pd.DataFrame:
    """The engines' ``Map.to_histogram()`` frames aligned by bucket: every engine gets a row
    for every ``[bucket,] slot`` any engine has (0 where it counted nothing), labelled with its
    host and engine. With ``merged``, the counts are summed over the engines instead, in a frame
    shaped as one engine's."""
    frame = labelled(parts)
    columns = list(frame.columns)
    if "slot" not in columns:
        return frame
    keys = columns[len(LABELS) : columns.index("slot") + 1]  # [bucket,] slot
    bounds = [c for c in ("range", "low", "high") if c in columns]
    grid = _sorted(frame[keys + bounds].drop_duplicates(keys), keys)
    if merged:
        counts = frame.groupby(keys, sort=False)["count"].sum().reset_index()
        out = grid.merge(counts, on=keys, how="left")
    else:
        engines = pd.DataFrame(
            {"host": [host for host, _, _ in parts], "engine": [e for _, e, _ in parts]}
        )
        on = [*LABELS, *keys]
        out = engines.merge(grid, how="cross").merge(frame[[*on, "count"]], on=on, how="left")
    out["count"] = out["count"].fillna(0).astype(np.uint64)
    return out.reset_index(drop=True)


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    try:
        return frame.sort_values(keys, kind="stable")
    except TypeError:  # buckets of mixed types: keep the engines' order
        return frame
