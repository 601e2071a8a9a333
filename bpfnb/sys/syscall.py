"""The raw ``bpf()`` system call through ctypes. Failures raise ``OSError(errno)``."""

from __future__ import annotations

import ctypes as ct
import os
import platform

__all__ = ["NR_BPF", "NR_PERF_EVENT_OPEN", "addr", "bpf", "libc"]

# (bpf, perf_event_open) by machine, from each architecture's unistd table.
_SYSCALL_NUMBERS = {
    "x86_64": (321, 298),
    "aarch64": (280, 241),
    "arm64": (280, 241),
    "riscv64": (280, 241),
    "ppc64le": (361, 319),
    "s390x": (351, 331),
}

try:
    NR_BPF, NR_PERF_EVENT_OPEN = _SYSCALL_NUMBERS[platform.machine()]
except KeyError:  # pragma: no cover - exotic architectures
    NR_BPF = NR_PERF_EVENT_OPEN = -1

libc = ct.CDLL(None, use_errno=True)
_syscall = libc.syscall
_syscall.restype = ct.c_long


def bpf(cmd: int, attr: ct.Structure) -> int:
    """Issue ``bpf(cmd, &attr, sizeof(attr))`` and return its result."""
    if NR_BPF < 0:
        raise OSError(38, f"bpf(): unknown syscall number on {platform.machine()}")
    result = _syscall(NR_BPF, ct.c_int(cmd), ct.byref(attr), ct.c_uint(ct.sizeof(attr)))
    if result < 0:
        err = ct.get_errno()
        raise OSError(err, os.strerror(err))
    return int(result)


def addr(obj: object) -> int:
    """The address of a ctypes object or buffer, as the u64 the kernel expects."""
    if obj is None:
        return 0
    return ct.addressof(obj)  # type: ignore[arg-type]
