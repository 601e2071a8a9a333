"""The pseudo file systems BPF tooling needs: tracefs (tracepoints, uprobes) and the bpffs."""

from __future__ import annotations

import ctypes as ct
import os

__all__ = ["ensure_bpffs", "ensure_tracefs", "is_mounted"]

TRACEFS = "/sys/kernel/tracing"
BPFFS = "/sys/fs/bpf"

_libc = ct.CDLL(None, use_errno=True)


def is_mounted(path: str, fstype: str) -> bool:
    """Whether a file system of ``fstype`` is mounted at ``path``."""
    with open("/proc/self/mounts") as mounts:
        return any(
            line.split()[1] == path and line.split()[2] == fstype for line in mounts if line.strip()
        )


def _mount(fstype: str, path: str) -> None:
    os.makedirs(path, exist_ok=True)
    if _libc.mount(fstype.encode(), path.encode(), fstype.encode(), 0, None) != 0:
        err = ct.get_errno()
        raise OSError(err, f"mount -t {fstype} {fstype} {path}: {os.strerror(err)}")


def ensure_tracefs() -> str | None:
    """Mount tracefs at /sys/kernel/tracing when missing; returns what was done, or None."""
    if os.path.exists(os.path.join(TRACEFS, "events")) or os.path.exists(
        "/sys/kernel/debug/tracing/events"
    ):
        return None
    _mount("tracefs", TRACEFS)
    return f"mounted tracefs at {TRACEFS}"


def ensure_bpffs() -> str | None:
    """Mount the BPF file system at /sys/fs/bpf when missing; returns what was done, or None."""
    if is_mounted(BPFFS, "bpf"):
        return None
    _mount("bpf", BPFFS)
    return f"mounted the bpf file system at {BPFFS}"
