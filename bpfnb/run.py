"""Timed runs: keep an object attached for a while (with a progress bar), then detach it.

An interrupt (Ctrl-C, or the notebook's stop button) ends a run early: the object is detached
all the same and :class:`bpfnb.errors.Interrupted` says so in one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bpfnb.errors import Interrupted
from bpfnb.object import BpfObject
from bpfnb.progress import Progress
from bpfnb.sys.tracefs import TracePipe

__all__ = ["follow_trace", "run_for"]

_TICK = 0.1


def run_for(
    obj: BpfObject, seconds: float, trace: bool = False, emit: Callable[[str], None] = print
) -> None:
    """Keep ``obj`` attached for ``seconds``, then detach it (maps stay readable).

    With ``trace``, each ``bpf_trace_printk`` line written from now on is passed to ``emit``.
    """
    started = time.monotonic()
    progress = Progress(obj.name, seconds)
    try:
        _wait(seconds, started, progress, emit if trace else None)
    except KeyboardInterrupt:
        elapsed = time.monotonic() - started
        progress.close(f"interrupted after {elapsed:.1f} s; detached")
        raise Interrupted(f"interrupted after {elapsed:.1f} s; {obj.name} detached") from None
    finally:
        obj.detach()
    progress.close(f"{seconds:g} s; detached")


def follow_trace(seconds: float, emit: Callable[[str], None] = print) -> int:
    """Pass the ``bpf_trace_printk`` lines written in the next ``seconds`` to ``emit``;
    returns how many there were."""
    started = time.monotonic()
    try:
        return _wait(seconds, started, None, emit)
    except KeyboardInterrupt:
        elapsed = time.monotonic() - started
        raise Interrupted(f"interrupted after {elapsed:.1f} s") from None


def _wait(
    seconds: float,
    started: float,
    progress: Progress | None,
    emit: Callable[[str], None] | None,
) -> int:
    lines = 0
    pipe = TracePipe() if emit is not None else None
    try:
        while (left := seconds - (time.monotonic() - started)) > 0:
            if pipe is not None and emit is not None:
                for line in pipe.read_lines(timeout=min(left, _TICK)):
                    emit(line)
                    lines += 1
            else:
                time.sleep(min(left, _TICK))
            if progress is not None:
                progress.update(time.monotonic() - started)
    finally:
        if pipe is not None:
            pipe.close()
    return lines
