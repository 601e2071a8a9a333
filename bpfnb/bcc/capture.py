"""Capture what native code writes to file descriptors 1 and 2.

libbcc prints clang's diagnostics straight to fd 2, and some of its own messages ("Unable to
find kernel headers") to fd 1. Under ipykernel started by nbval or pytest, neither fd reaches
the cell, so the text would be lost. A temporary file (not a pipe, which could fill and block
the compiler) takes both fds for the duration of the block.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["CapturedText", "captured_output"]


class CapturedText:
    """The text written to fds 1 and 2 inside :func:`captured_output`, readable after it."""

    def __init__(self) -> None:
        self._text = ""

    def text(self) -> str:
        return self._text


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


@contextlib.contextmanager
def captured_output() -> Iterator[CapturedText]:
    """Redirect fds 1 and 2 into a temporary file for the block; the text is on the result."""
    captured = CapturedText()
    _flush_python_streams()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile(mode="w+b") as sink:
        for fd in saved:
            os.dup2(sink.fileno(), fd)
        try:
            yield captured
        finally:
            _flush_python_streams()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            captured._text = sink.read().decode(errors="replace")
