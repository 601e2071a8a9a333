"""Attaching loaded programs: one module per attach type, each returning a :class:`FdLink`
whose idempotent ``close()`` detaches.

Every function takes the program's fd first::

    link = attach_tracepoint(prog_fd, "syscalls:sys_enter_getppid")
    link.close()
"""

from bpfnb.link.attach import ElfObject, attach_elf_object
from bpfnb.link.base import FdLink
from bpfnb.link.cgroup import attach_cgroup
from bpfnb.link.fentry import attach_fentry
from bpfnb.link.kprobe import attach_kprobe
from bpfnb.link.perf_event import attach_perf_event
from bpfnb.link.probes import sweep_stale_probes
from bpfnb.link.raw_tracepoint import attach_raw_tracepoint
from bpfnb.link.socket_filter import SocketFilterLink, attach_socket_filter
from bpfnb.link.tracepoint import attach_tracepoint
from bpfnb.link.uprobe import attach_uprobe
from bpfnb.link.xdp import attach_xdp

__all__ = [
    "ElfObject",
    "FdLink",
    "SocketFilterLink",
    "attach_cgroup",
    "attach_elf_object",
    "attach_fentry",
    "attach_kprobe",
    "attach_perf_event",
    "attach_raw_tracepoint",
    "attach_socket_filter",
    "attach_tracepoint",
    "attach_uprobe",
    "attach_xdp",
    "sweep_stale_probes",
]
