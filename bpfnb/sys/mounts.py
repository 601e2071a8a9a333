"""The pseudo file systems BPF needs: tracefs, the bpffs and cgroup v2, and what they are.

``mount()`` and ``statfs()`` are called through libc; ``/proc/self/mounts`` says what is where.
"""

from __future__ import annotations

import ctypes as ct
import os

__all__ = [
    "BPFFS",
    "BPF_FS_MAGIC",
    "CGROUP2_SUPER_MAGIC",
    "TRACEFS",
    "bpffs_root",
    "ensure_bpffs",
    "ensure_tracefs",
    "fs_magic",
    "is_mounted",
    "mount_point_of",
]

TRACEFS = "/sys/kernel/tracing"
BPFFS = "/sys/fs/bpf"
BPF_FS_MAGIC = 0xCAFE4A11
CGROUP2_SUPER_MAGIC = 0x63677270

_libc = ct.CDLL(None, use_errno=True)


def _mounts() -> list[tuple[str, str]]:
    # (mount point, file system type) of every mount, in /proc/self/mounts order.
    with open("/proc/self/mounts") as mounts:
        return [(f[1], f[2]) for f in (line.split() for line in mounts) if len(f) > 2]


def is_mounted(path: str, fstype: str) -> bool:
    """Whether a file system of ``fstype`` is mounted at ``path``."""
    return (path, fstype) in _mounts()


def mount_point_of(fstype: str) -> str | None:
    """Where the first file system of ``fstype`` (e.g. ``"cgroup2"``) is mounted, or None."""
    return next((point for point, kind in _mounts() if kind == fstype), None)


def bpffs_root(path: str) -> str | None:
    """The bpffs mount point that holds ``path`` (the longest match), or None."""
    best = None
    for point, kind in _mounts():
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if kind == "bpf" and inside and (best is None or len(point) > len(best)):
            best = point
    return best


def fs_magic(path: str) -> int | None:
    """The ``f_type`` that statfs(2) reports for ``path``, or None when statfs fails."""
    # struct statfs begins with f_type (a long); os.statvfs does not report it.
    buf = (ct.c_long * 16)()
    if _libc.statfs(path.encode(), buf) != 0:
        return None
    return int(buf[0]) & 0xFFFFFFFF


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
