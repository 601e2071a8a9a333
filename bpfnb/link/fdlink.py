"""What every attachment is: a :class:`Link`, here an :class:`FdLink` that detaches by closing
what it holds."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from bpfnb.closing import Closing
from bpfnb.errors import AttachError
from bpfnb.sys import cpus
from bpfnb.sys.fd import FD

__all__ = ["FdLink", "Link", "attach_error", "online_cpus"]

# ENOTSUPP is kernel-internal (524) but leaks out of bpf() for unsupported attach types.
ENOTSUPP = 524
NOT_SUPPORTED = (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP)


@runtime_checkable
class Link(Protocol):
    """One attachment of a program: ``kind`` (``"tracepoint"``, ``"uprobe"``...), ``target``
    (where), and ``close()``, which detaches and is idempotent."""

    kind: str
    target: str

    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...


class FdLink(Closing):
    """An attachment that lasts as long as its fds (perf events, BPF links, sockets).

    ``close()`` runs the detach steps in order and is idempotent; the first failure is re-raised
    after every step has run, so a broken step never leaves the others attached.
    """

    def __init__(
        self,
        kind: str,
        target: str,
        fds: Iterable[FD] = (),
        steps: Iterable[Callable[[], None]] = (),
    ) -> None:
        self.kind = kind
        self.target = target
        self._fds = list(fds)
        # Steps run after the fds close: a tracefs probe can only be removed once unused.
        self._steps = list(steps)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def fds(self) -> list[int]:
        """The raw fds this link holds (perf events, a BPF link), for inspection."""
        return [fd.fileno() for fd in self._fds if not fd.closed]

    def after_close(self, step: Callable[[], None]) -> None:
        """Run ``step`` when the link closes, after its fds (undo what the attach set up)."""
        self._steps.append(step)

    def close(self) -> None:
        """Detach. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        for fd in self._fds:
            try:
                fd.close()
            except OSError as err:
                errors.append(err)
        for step in self._steps:
            try:
                step()
            except Exception as err:  # keep detaching the rest
                errors.append(err)
        self._fds.clear()
        self._steps.clear()
        if errors:
            raise errors[0]

    def __repr__(self) -> str:
        state = "closed" if self._closed else "attached"
        return f"<{type(self).__name__} {self.kind}:{self.target} ({state})>"


def attach_error(what: str, err: OSError) -> AttachError:
    """An :class:`AttachError` naming the attach point and the kernel's errno."""
    return AttachError(f"cannot attach {what}", err.errno)


def online_cpus() -> list[int]:
    """The ids of the online CPUs (``/sys/devices/system/cpu/online``, e.g. ``0-3,6``)."""
    try:
        return list(cpus.online_cpus())
    except OSError:
        return list(range(os.cpu_count() or 1))
