"""Keep LLVM's fatal errors from ending the process.

Some code makes clang's BPF backend give up with ``report_fatal_error`` (clang 14, for one,
cannot use the result of a 32-bit ``__sync_fetch_and_add``). LLVM then calls ``exit(1)``, which
would end the notebook kernel. libbcc links LLVM dynamically, so bpfnb installs LLVM's fatal
error handler and compiles on a worker thread: the handler hands the reason to the waiting
caller, which raises it as an error, and parks the worker for good instead of returning into
``exit``. The parked thread and LLVM's half-built module are the price of staying alive.
"""

from __future__ import annotations

import ctypes as ct
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["LlvmFatalError", "run_guarded"]

T = TypeVar("T")

_HANDLER_TYPE = ct.CFUNCTYPE(None, ct.c_char_p)
_local = threading.local()
_installed: dict[str, Any] = {}


class LlvmFatalError(Exception):
    """LLVM reported a fatal error while compiling; the message is its reason."""


def _on_fatal_error(reason: bytes) -> None:
    call = getattr(_local, "call", None)
    if call is None:  # a fatal error outside run_guarded: nothing to hand it to
        return
    call.fatal = reason.decode(errors="replace")
    call.done.set()
    threading.Event().wait()  # never return: LLVM would exit the process


def _llvm_library() -> str | None:
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "/libLLVM" in path and ".so" in path:
                return path
    return None


def _install() -> bool:
    if "handler" not in _installed:
        path = _llvm_library()
        if path is None:  # LLVM linked statically into libbcc: no handler to install
            _installed["handler"] = None
        else:
            handler = _HANDLER_TYPE(_on_fatal_error)
            ct.CDLL(path).LLVMInstallFatalErrorHandler(handler)
            _installed["handler"] = handler  # keep the callback alive
    return _installed["handler"] is not None


class _Call:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.fatal: str | None = None


def run_guarded(action: Callable[[], T]) -> T:
    """Run ``action`` (which drives LLVM) so that a fatal LLVM error raises ``LlvmFatalError``."""
    if not _install():
        return action()
    call = _Call()

    def work() -> None:
        _local.call = call
        try:
            call.result = action()
        except BaseException as err:
            call.error = err
        call.done.set()

    worker = threading.Thread(target=work, name="bpfnb-compile", daemon=True)
    worker.start()
    try:
        call.done.wait()
    except KeyboardInterrupt:
        call.done.wait()  # a compile is short: finish it so nothing is left half-owned
        raise
    if call.fatal is not None:
        raise LlvmFatalError(call.fatal)
    if call.error is not None:
        raise call.error
    return call.result
