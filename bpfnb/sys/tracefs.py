"""tracefs: where it lives, tracepoint ids, and the trace pipe that ``bpf_trace_printk`` fills."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable

from bpfnb.closing import Closing

__all__ = ["TracePipe", "mount_point", "tracepoint_id"]

_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def mount_point() -> str | None:
    """The tracefs directory, or None when tracefs is not mounted."""
    for path in _CANDIDATES:
        if os.path.exists(os.path.join(path, "events")):
            return path
    return None


def tracepoint_id(category: str, name: str) -> int:
    """The perf id of tracepoint ``category:name``; ``FileNotFoundError`` when it doesn't exist."""
    root = mount_point()
    if root is None:
        raise FileNotFoundError("tracefs is not mounted (expected /sys/kernel/tracing)")
    with open(os.path.join(root, "events", category, name, "id")) as f:
        return int(f.read())


class TracePipe(Closing):
    """The tracefs ``trace_pipe``, opened non-blocking. Reading consumes what it returns."""

    def __init__(self) -> None:
        root = mount_point()
        if root is None:
            raise FileNotFoundError("tracefs is not mounted: run python -m bpfnb doctor --fix")
        self._fd = os.open(os.path.join(root, "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK)
        self._partial = b""

    def read_lines(self, timeout: float = 0.0) -> list[str]:
        """The complete lines available now (waiting up to ``timeout`` seconds for some)."""
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return []
        chunks = []
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        data = self._partial + b"".join(chunks)
        *lines, self._partial = data.split(b"\n")
        return [line.decode(errors="replace") for line in lines if line.strip()]

    def follow(self, seconds: float, emit: Callable[[str], None]) -> int:
        """Pass each line to ``emit`` for ``seconds``; returns how many lines were read."""
        deadline = time.monotonic() + seconds
        count = 0
        while (left := deadline - time.monotonic()) > 0:
            for line in self.read_lines(timeout=min(left, 0.2)):
                emit(line)
                count += 1
        return count

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
