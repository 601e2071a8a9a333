"""``perf_event_open(2)``: the attr struct, the call, and the ioctls that attach BPF programs."""

from __future__ import annotations

import ctypes as ct
import fcntl
import os

from bpfnb.sys.fd import FD
from bpfnb.sys.syscall import NR_PERF_EVENT_OPEN, libc

__all__ = [
    "PERF_COUNT_SW_BPF_OUTPUT",
    "PERF_COUNT_SW_CPU_CLOCK",
    "PERF_TYPE_SOFTWARE",
    "PERF_TYPE_TRACEPOINT",
    "PerfEventAttr",
    "attach_bpf",
    "disable",
    "enable",
    "perf_event_open",
]

PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1
PERF_TYPE_TRACEPOINT = 2

PERF_COUNT_SW_CPU_CLOCK = 0
PERF_COUNT_SW_BPF_OUTPUT = 10

PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3

# Bits of perf_event_attr's flag word.
FLAG_DISABLED = 1 << 0
FLAG_FREQ = 1 << 10
FLAG_WATERMARK = 1 << 14

PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_SET_BPF = 0x40042408


class PerfEventAttr(ct.Structure):
    """``struct perf_event_attr`` (PERF_ATTR_SIZE_VER8). ``config1``/``config2`` are also
    ``kprobe_func``/``uprobe_path`` and ``kprobe_addr``/``probe_offset``."""

    _fields_ = [
        ("type", ct.c_uint32),
        ("size", ct.c_uint32),
        ("config", ct.c_uint64),
        ("sample_period", ct.c_uint64),
        ("sample_type", ct.c_uint64),
        ("read_format", ct.c_uint64),
        ("flags", ct.c_uint64),
        ("wakeup_events", ct.c_uint32),
        ("bp_type", ct.c_uint32),
        ("config1", ct.c_uint64),
        ("config2", ct.c_uint64),
        ("branch_sample_type", ct.c_uint64),
        ("sample_regs_user", ct.c_uint64),
        ("sample_stack_user", ct.c_uint32),
        ("clockid", ct.c_int32),
        ("sample_regs_intr", ct.c_uint64),
        ("aux_watermark", ct.c_uint32),
        ("sample_max_stack", ct.c_uint16),
        ("reserved_2", ct.c_uint16),
        ("aux_sample_size", ct.c_uint32),
        ("reserved_3", ct.c_uint32),
        ("sig_data", ct.c_uint64),
        ("config3", ct.c_uint64),
    ]

    def __init__(self, **fields: int) -> None:
        super().__init__(**fields)
        self.size = ct.sizeof(self)


_perf_syscall = libc.syscall
_perf_syscall.restype = ct.c_long


def perf_event_open(
    attr: PerfEventAttr, pid: int = -1, cpu: int = 0, group_fd: int = -1, flags: int = 0
) -> FD:
    """Open a perf event; raises ``OSError(errno)`` on failure."""
    result = _perf_syscall(
        NR_PERF_EVENT_OPEN,
        ct.byref(attr),
        ct.c_int(pid),
        ct.c_int(cpu),
        ct.c_int(group_fd),
        ct.c_ulong(flags | PERF_FLAG_FD_CLOEXEC),
    )
    if result < 0:
        err = ct.get_errno()
        raise OSError(err, os.strerror(err))
    return FD(int(result))


def attach_bpf(event_fd: int, prog_fd: int) -> None:
    """Run ``prog_fd`` on each hit of the event (PERF_EVENT_IOC_SET_BPF)."""
    fcntl.ioctl(event_fd, PERF_EVENT_IOC_SET_BPF, prog_fd)


def enable(event_fd: int) -> None:
    fcntl.ioctl(event_fd, PERF_EVENT_IOC_ENABLE, 0)


def disable(event_fd: int) -> None:
    fcntl.ioctl(event_fd, PERF_EVENT_IOC_DISABLE, 0)
