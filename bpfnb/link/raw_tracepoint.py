"""Raw tracepoint programs (``SEC("raw_tracepoint/name")``): BPF_RAW_TRACEPOINT_OPEN."""

from __future__ import annotations

import errno

from bpfnb.errors import AttachError
from bpfnb.link.fdlink import FdLink, attach_error
from bpfnb.sys import bpf

__all__ = ["attach_raw_tracepoint"]


def attach_raw_tracepoint(prog_fd: int, name: str) -> FdLink:
    """Run a raw tracepoint program on tracepoint ``name`` (``"sys_enter"``, no category)."""
    if ":" in name or "/" in name:
        # Raw tracepoints are named without their category: sched:sched_switch -> sched_switch.
        name = name.replace("/", ":").rsplit(":", 1)[1]
    try:
        link = bpf.raw_tracepoint_open(name, prog_fd)
    except OSError as err:
        if err.errno == errno.ENOENT:
            raise AttachError(
                f"cannot attach raw tracepoint {name!r}: no such tracepoint", err.errno
            ) from err
        raise attach_error(f"raw tracepoint {name!r}", err) from err
    return FdLink("raw_tracepoint", name, [link])
