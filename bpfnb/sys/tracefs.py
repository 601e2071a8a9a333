"""tracefs: where it lives, tracepoint ids, and the trace pipe that ``bpf_trace_printk`` fills."""

from __future__ import annotations

import contextlib
import itertools
import os
import select

from bpfnb.closing import Closing

__all__ = ["TracePipe", "mount_point", "owner_alive", "tracepoint_id"]

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
    """``bpf_trace_printk`` output written from now on, read without blocking.

    bpfnb reads it from a tracefs instance of its own (``instances/bpfnb_<pid>_<n>``) with the
    ``bpf_trace:bpf_trace_printk`` event enabled (Linux 5.10, commit ac5a72ea5c89): it starts
    empty, so lines written before are never shown, and reading it takes nothing from other
    readers of the shared ``trace_pipe``. Kernels without that event fall back to the shared
    ``trace_pipe``, emptied first. The kernel does not record which program wrote a line.
    """

    def __init__(self) -> None:
        root = mount_point()
        if root is None:
            raise FileNotFoundError("tracefs is not mounted: run python -m bpfnb doctor --fix")
        self._instance = _own_instance(root)
        path = os.path.join(self._instance or root, "trace_pipe")
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._partial = b""
        if self._instance is None:
            self.read_lines()  # older lines in the shared pipe: not ours to show
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

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._instance is not None:
            _remove_instance(self._instance)
            self._instance = None


_PRINTK_EVENT = os.path.join("events", "bpf_trace", "bpf_trace_printk", "enable")
_INSTANCE_PREFIX = "bpfnb_"
_instances = itertools.count()


def _own_instance(root: str) -> str | None:
    # A new tracefs instance receiving bpf_trace_printk lines, or None when the kernel has no
    # such event (or no instances).
    if not os.path.exists(os.path.join(root, _PRINTK_EVENT)):
        return None
    _sweep_instances(root)
    path = os.path.join(root, "instances", f"{_INSTANCE_PREFIX}{os.getpid()}_{next(_instances)}")
    try:
        os.mkdir(path)
        with open(os.path.join(path, _PRINTK_EVENT), "w") as f:
            f.write("1")
    except OSError:
        _remove_instance(path)
        return None
    return path


def _remove_instance(path: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _sweep_instances(root: str) -> None:
    # Instances left by bpfnb processes that died before closing their pipe.
    directory = os.path.join(root, "instances")
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            pid = name[len(_INSTANCE_PREFIX) :].split("_", 1)[0]
            if name.startswith(_INSTANCE_PREFIX) and pid.isdigit() and not owner_alive(int(pid)):
                _remove_instance(os.path.join(directory, name))


def owner_alive(pid: int) -> bool:
    """Whether process ``pid``, which named a tracefs entry after itself, still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
