"""Objects that own kernel resources: closed on leaving a ``with`` block, or when dropped; and
the callbacks that stop what depends on them (streams, live views) when they close."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["CloseCallbacks", "Closing"]

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


class CloseCallbacks:
    """Callbacks that run once, when their owner closes (it calls :meth:`run`)."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []
        self._done = False

    def add(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` at close (at once when the owner has closed already)."""
        if self._done:
            callback()
        else:
            self._callbacks.append(callback)

    def add_weak(self, obj: Any, method: str) -> None:
        """Call ``obj.method()`` at close, without keeping ``obj`` alive."""
        ref = weakref.ref(obj)

        def call() -> None:
            target = ref()
            if target is not None:
                getattr(target, method)()

        self.add(call)

    def run(self) -> list[BaseException]:
        """Run every callback once; returns what they raised (each runs whatever the others
        do)."""
        self._done = True
        callbacks, self._callbacks = self._callbacks, []
        errors: list[BaseException] = []
        for callback in callbacks:
            try:
                callback()
            except Exception as err:  # the rest still run; the caller reports the first
                errors.append(err)
        return errors
