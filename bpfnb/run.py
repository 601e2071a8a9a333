"""Timed runs: keep an object attached for a while (with a progress bar), then detach it."""

from __future__ import annotations

import time
from collections.abc import Callable

from bpfnb.object import BpfObject
from bpfnb.progress import Progress
from bpfnb.sys.tracefs import TracePipe

__all__ = ["run_for"]

_TICK = 0.1


def run_for(
    obj: BpfObject, seconds: float, trace: bool = False, emit: Callable[[str], None] = print
) -> None:
    """Keep ``obj`` attached for ``seconds``, then detach it (maps stay readable).

    With ``trace``, each ``bpf_trace_printk`` line is passed to ``emit`` as it arrives.
    """
    pipe = TracePipe() if trace else None
    started = time.monotonic()
    try:
        with Progress(obj.name, seconds) as progress:
            while (left := seconds - (time.monotonic() - started)) > 0:
                if pipe is not None:
                    for line in pipe.read_lines(timeout=min(left, _TICK)):
                        emit(line)
                else:
                    time.sleep(min(left, _TICK))
                progress.update(time.monotonic() - started)
    finally:
        if pipe is not None:
            pipe.close()
        obj.detach()
