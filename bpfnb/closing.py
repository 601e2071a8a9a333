"""Objects that own kernel resources: closed on leaving a ``with`` block, or when dropped."""

from __future__ import annotations

import contextlib
from typing import TypeVar

__all__ = ["Closing"]

T = TypeVar("T", bound="Closing")


class Closing:
    """A mixin for classes with an idempotent ``close()``.

    Dropping the last reference closes too: a link, stream or map nobody can reach any more
    must not stay attached or open.
    """

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
