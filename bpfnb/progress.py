"""A progress bar for timed runs: an ipywidgets bar in a notebook, silence elsewhere."""

from __future__ import annotations

import contextlib
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
    """Shows ``label`` with a bar from 0 to 1; ``close()`` removes the bar."""

    def __init__(self, label: str) -> None:
        self._bar: Any = None
        if _in_kernel():
            import ipywidgets
            from IPython.display import display

            self._bar = ipywidgets.FloatProgress(value=0.0, min=0.0, max=1.0, description=label)
            display(self._bar)

    def update(self, fraction: float) -> None:
        if self._bar is not None:
            self._bar.value = max(0.0, min(1.0, fraction))

    def close(self) -> None:
        if self._bar is not None:
            with contextlib.suppress(Exception):
                self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
