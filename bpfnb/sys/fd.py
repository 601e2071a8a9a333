"""File descriptors owned by objects that close them."""

from __future__ import annotations

import contextlib
import os

__all__ = ["FD"]


class FD:
    """One kernel file descriptor; ``close()`` is idempotent and the last reference closes it."""

    __slots__ = ("_fd", "__weakref__")

    def __init__(self, fd: int) -> None:
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        self._fd = fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def fileno(self) -> int:
        """The raw descriptor; raises ``ValueError`` once closed."""
        if self._fd < 0:
            raise ValueError("file descriptor is closed")
        return self._fd

    def __int__(self) -> int:
        return self.fileno()

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            self.close()

    def __enter__(self) -> FD:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FD({self._fd})" if self._fd >= 0 else "FD(closed)"
