"""``Failures``: which engines of a cluster object failed, and why, one row per engine."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import TYPE_CHECKING

from bpfnb.cluster.engine import Failure
from bpfnb.errors import ClusterError
from bpfnb.lazy import lazy_import

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

__all__ = ["Failures", "no_engine_answered"]


class Failures:
    """The latest failure of each engine that failed: its host, engine id, the step (``load``,
    ``to_frame``, ...) and the error. Shown as a table under a cell; ``to_frame()`` gives it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._by_engine: dict[int, Failure] = {}

    def add(self, failure: Failure) -> None:
        self._by_engine[failure.engine] = failure

    def __len__(self) -> int:
        return len(self._by_engine)

    def __iter__(self) -> Iterator[Failure]:
        return iter(sorted(self._by_engine.values(), key=lambda f: f.engine))

    def __contains__(self, engine: object) -> bool:
        return engine in self._by_engine

    def rows(self) -> list[tuple[str, int, str, str]]:
        """(host, engine, step, error) for each failed engine."""
        return [(f.host or "?", f.engine, f.step, f.error) for f in self]

    def to_frame(self) -> pd.DataFrame:
        """One row per failed engine: ``host``, ``engine``, ``step``, ``error``."""
        return pd.DataFrame(self.rows(), columns=["host", "engine", "step", "error"])

    def __repr__(self) -> str:
        if not self._by_engine:
            return f"{self.name}: no engine failed"
        lines = [f"{self.name}: {len(self)} engine(s) failed"]
        lines += [f"  {host} (engine {e}) at {step}: {err}" for host, e, step, err in self.rows()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        if not self._by_engine:
            return f"<i>{esc(self.name)}: no engine failed</i>"
        body = "".join(
            f"<tr><td>{esc(host)}</td><td>{e}</td><td>{esc(step)}</td>"
            f"<td style='text-align:left'><pre>{esc(err)}</pre></td></tr>"
            for host, e, step, err in self.rows()
        )
        return (
            f"<div><b>{esc(self.name)}</b>: {len(self)} engine(s) failed<table><tr><th>host</th>"
            f"<th>engine</th><th>step</th><th>error</th></tr>{body}</table></div>"
        )


def no_engine_answered(name: str, failed: list[Failure]) -> BaseException:
    """The error for a call that no engine answered: the engines' own error when they all
    failed alike (a ``CompileError``, with where), else a :class:`ClusterError` listing each."""
    first = failed[0].exception
    alike = first is not None and all(
        type(f.exception) is type(first) and str(f.exception) == str(first) for f in failed
    )
    if alike and first is not None:
        where = ", ".join(f"engine {f.engine} ({f.host})" for f in failed)
        first.__notes__ = [*getattr(first, "__notes__", []), f"on every engine: {where}"]
        return first
    rows = [(f.host or "?", f.engine, f.step, f.error) for f in failed]
    return ClusterError(f"{name}: no engine could {failed[0].step or 'answer'}", rows)
