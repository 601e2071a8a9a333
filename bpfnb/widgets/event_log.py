"""``EventLog``: the newest events of an EventStream, as a table, newest first."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bpfnb.widgets._html import table_html
from bpfnb.widgets.view import LiveView, accounting

__all__ = ["EventLog"]


class EventLog(LiveView):
    """The last ``last`` events of ``stream`` (``stream.tail(last)``), newest first.

    Each refresh first polls the stream (without waiting) so new records are read in. The status
    line shows how many events were received, and the stream's ``lost`` and ``dropped`` counts.
    """

    def __init__(
        self,
        stream: Any,
        columns: list[str] | None = None,
        last: int = 50,
        *,
        poll: bool = True,
        interval: float = 1.0,
        autostart: bool = True,
        owner: Any = None,
        close_source: bool = False,
    ) -> None:
        if last <= 0:
            raise ValueError(f"last must be positive, got {last!r}")
        self.columns = list(columns) if columns is not None else None
        self.last = last
        self.poll = poll
        super().__init__(
            stream,
            interval=interval,
            autostart=autostart,
            owner=owner,
            close_source=close_source,
        )

    def _options(self) -> list[str]:
        parts = []
        if self.columns is not None:
            parts.append(f"columns={self.columns!r}")
        parts.append(f"last={self.last}")
        return parts

    def _source_status(self) -> str:
        stats = self.source.stats
        return f" · received {stats.received} · {accounting(stats)}"

    def _read(self) -> tuple[str, dict[str, Any]] | None:
        return ("poll", {"timeout": 0}) if self.poll else None

    def _compute(self, raw: Any) -> pd.DataFrame:
        rows = self.source.tail(self.last)
        if self.columns is not None:
            missing = [c for c in self.columns if c not in rows.columns]
            if missing and len(rows.columns):
                raise KeyError(f"columns {missing!r}: no such field in {list(rows.columns)}")
            rows = rows.reindex(columns=self.columns)
        return rows.iloc[::-1].reset_index(drop=True)

    def _draw(self, data: pd.DataFrame) -> str:
        return table_html(data)
