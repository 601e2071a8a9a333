"""A progress bar for timed runs: ipywidgets inside a Jupyter kernel, a text line elsewhere."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress"]


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython  # defers IPython: a script may never need it
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Progress:
    """A bar from 0 to ``total`` seconds with a short status text beside it.

    ``close()`` stops it and leaves its last state (or a final status) in place, so the cell
    shows how the run ended.
    """

    def __init__(self, label: str, total: float, enabled: bool = True) -> None:
        self._label = label
        self._total = total
        self._bar: Any = None
        self._status: Any = None
        self._text = enabled and not _in_kernel()
        if enabled and not self._text:
            # Deferred: ipywidgets loads only when a notebook shows a bar.
            import ipywidgets
            from IPython.display import display

            self._bar = ipywidgets.FloatProgress(value=0.0, min=0.0, max=total, description=label)
            self._status = ipywidgets.Label(value=f"0.0/{total:g} s")
            display(ipywidgets.HBox([self._bar, self._status]))

    def update(self, done: float, status: str = "") -> None:
        done = max(0.0, min(self._total, done))
        line = f"{done:.1f}/{self._total:g} s" + (f", {status}" if status else "")
        if self._bar is not None:
            self._bar.value = done
            self._status.value = line
        elif self._text:
            filled = int(20 * done / self._total) if self._total else 20
            bar = "#" * filled + "." * (20 - filled)
            sys.stderr.write(f"\r{self._label} [{bar}] {line}")
            sys.stderr.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, status: str | None = None) -> None:
        """Stop updating; the bar stays, showing ``status`` (or its last state)."""
        if self._bar is not None:
            if status is not None:
                self._status.value = status
            self._bar = None
        elif self._text:
            sys.stderr.write(f" {status}\n" if status else "\n")
            self._text = False
