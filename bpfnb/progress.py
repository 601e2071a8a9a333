"""A progress bar for timed runs: ipywidgets inside a Jupyter kernel, a text line elsewhere."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

__all__ = ["Progress"]


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Progress:
    """A bar from 0 to ``total`` seconds with a short status text."""

    def __init__(self, label: str, total: float, enabled: bool = True) -> None:
        self._label = label
        self._total = total
        self._bar: Any = None
        self._text = enabled and not _in_kernel()
        if enabled and not self._text:
            import ipywidgets
            from IPython.display import display

            self._bar = ipywidgets.FloatProgress(value=0.0, min=0.0, max=total, description=label)
            display(self._bar)

    def update(self, done: float, status: str = "") -> None:
        done = max(0.0, min(self._total, done))
        if self._bar is not None:
            self._bar.value = done
            self._bar.description = f"{self._label} {status}"
        elif self._text:
            filled = int(20 * done / self._total) if self._total else 20
            bar = "#" * filled + "." * (20 - filled)
            sys.stderr.write(f"\r{self._label} [{bar}] {done:.1f}/{self._total:g}s {status}")
            sys.stderr.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            with contextlib.suppress(Exception):
                self._bar.close()
            self._bar = None
        elif self._text:
            sys.stderr.write("\n")
            self._text = False
