"""Waiting for events: epoll over a stream's fds, and a polling task on the asyncio loop."""

from __future__ import annotations

import contextlib
import select
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

__all__ = ["Poller", "start_background"]


class Poller:
    """Wait until any of ``fds`` has data (the kernel's wakeups), or a timeout passes."""

    def __init__(self, fds: Iterable[int]) -> None:
        self._epoll = select.epoll()
        for fd in fds:
            self._epoll.register(fd, select.EPOLLIN)

    def wait(self, timeout: float) -> bool:
        """True when some fd became readable within ``timeout`` seconds."""
        return bool(self._epoll.poll(timeout))

    def close(self) -> None:
        self._epoll.close()


def start_background(
    poll: Callable[[], object], interval: float, stopped: Callable[[], bool]
) -> asyncio.Task[None]:
    """Call ``poll()`` every ``interval`` seconds on the current asyncio loop until ``stopped()``.

    In Jupyter this is the kernel's own loop, so cells keep running in between and nothing
    runs on another thread.
    """
    import asyncio  # only background polling needs it; importing bpfnb stays fast

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "polling in the background needs a running asyncio loop (a Jupyter kernel has one; "
            "elsewhere call it from a coroutine); use poll() or collect() instead"
        ) from None

    async def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while not stopped():
                poll()
                await asyncio.sleep(interval)

    return loop.create_task(run())
