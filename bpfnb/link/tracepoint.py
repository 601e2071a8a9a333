"""Tracepoint programs (``SEC("tracepoint/cat/name")``) on a perf tracepoint event."""

from __future__ import annotations

from bpfnb.errors import AttachError
from bpfnb.link.fdlink import FdLink, attach_error
from bpfnb.link.perf_event import bind_to_event
from bpfnb.sys import perf, tracefs

__all__ = ["attach_tracepoint", "split_tracepoint"]


def split_tracepoint(target: str) -> tuple[str, str]:
    """``"cat:name"`` or ``"cat/name"`` -> ``("cat", "name")``."""
    for sep in (":", "/"):
        category, found, name = target.partition(sep)
        if found and category and name and sep not in name:
            return category, name
    raise ValueError(f"tracepoint {target!r} is not of the form 'category:name'")


def open_tracepoint_event(tp_id: int, pid: int = -1) -> perf.FD:
    """A disabled perf event on tracepoint id ``tp_id`` (also the id of a tracefs probe)."""
    attr = perf.PerfEventAttr(type=perf.PERF_TYPE_TRACEPOINT, config=tp_id, sample_period=1)
    attr.wakeup_events = 1
    attr.flags = perf.FLAG_DISABLED
    # A BPF program on a tracepoint runs on every CPU; cpu 0 only names the event's context.
    return perf.perf_event_open(attr, pid=pid, cpu=0 if pid == -1 else -1)


def attach_tracepoint(prog_fd: int, target: str) -> FdLink:
    """Run a tracepoint program on each hit of ``target`` (``"syscalls:sys_enter_getppid"``)."""
    category, name = split_tracepoint(target)
    label = f"{category}:{name}"
    try:
        tp_id = tracefs.tracepoint_id(category, name)
    except FileNotFoundError as err:
        root = tracefs.mount_point()
        if root is None:
            raise AttachError(
                f"cannot attach tracepoint {label}: tracefs is not mounted "
                "(run `python -m bpfnb doctor --fix`)"
            ) from err
        raise AttachError(
            f"cannot attach tracepoint {label}: no such tracepoint (see {root}/available_events)"
        ) from err
    try:
        event = open_tracepoint_event(tp_id)
    except OSError as err:
        raise attach_error(f"tracepoint {label}", err) from err
    return FdLink("tracepoint", label, bind_to_event(prog_fd, event, f"tracepoint {label}"))
