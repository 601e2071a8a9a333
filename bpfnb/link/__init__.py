"""Attaching loaded programs: one module per attach type, each returning a :class:`Link`
whose idempotent ``close()`` detaches.

Every function takes the program's fd first::

    link = attach_tracepoint(prog_fd, "syscalls:sys_enter_getppid")
    link.close()

:func:`attach_by_kind` attaches where a program's name says (an ELF section, a bcc function
name). :class:`bpfnb.BpfObject` calls these for you and records every link.
"""

from bpfnb.link.auto import AUTO_KINDS, attach_by_kind
from bpfnb.link.cgroup import attach_cgroup
from bpfnb.link.fdlink import FdLink, Link
from bpfnb.link.fentry import attach_fentry
from bpfnb.link.iter import IterLink, attach_iter
from bpfnb.link.kprobe import attach_kprobe
from bpfnb.link.perf_event import attach_perf_event
from bpfnb.link.probes import sweep_stale_probes
from bpfnb.link.raw_tracepoint import attach_raw_tracepoint
from bpfnb.link.socket_filter import SocketFilterLink, attach_socket_filter
from bpfnb.link.struct_ops import BPF_F_LINK, StructOps, attach_struct_ops
from bpfnb.link.tracepoint import attach_tracepoint
from bpfnb.link.uprobe import attach_uprobe
from bpfnb.link.xdp import attach_xdp

__all__ = [
    "AUTO_KINDS",
    "BPF_F_LINK",
    "FdLink",
    "IterLink",
    "Link",
    "SocketFilterLink",
    "StructOps",
    "attach_by_kind",
    "attach_cgroup",
    "attach_fentry",
    "attach_iter",
    "attach_kprobe",
    "attach_perf_event",
    "attach_raw_tracepoint",
    "attach_socket_filter",
    "attach_struct_ops",
    "attach_tracepoint",
    "attach_uprobe",
    "attach_xdp",
    "sweep_stale_probes",
]
