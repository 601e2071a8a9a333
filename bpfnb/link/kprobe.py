"""Kprobe and kretprobe programs (``SEC("kprobe/func")``) on a kernel function."""

from __future__ import annotations

import errno

from bpfnb.errors import AttachError, KernelFeatureError
from bpfnb.link import probes
from bpfnb.link.fdlink import FdLink, attach_error
from bpfnb.link.perf_event import bind_to_event
from bpfnb.sys.features import KPROBES_MISSING

__all__ = ["attach_kprobe", "kprobes_available"]


def kprobes_available() -> bool:
    """Whether this kernel can make kprobes at all (the PMU or tracefs ``kprobe_events``)."""
    return probes.pmu_type("kprobe") is not None or probes.events_file("kprobe") is not None


def attach_kprobe(prog_fd: int, func: str, ret: bool = False, offset: int = 0) -> FdLink:
    """Run a kprobe program when kernel function ``func`` is entered (or returns: ``ret``).

    Uses the kprobe PMU, or a tracefs ``kprobe_events`` entry on kernels before 4.17. Raises
    :class:`KernelFeatureError` when the kernel has neither.
    """
    kind = "kretprobe" if ret else "kprobe"
    label = f"{func}+{offset:#x}" if offset else func
    probes.sweep_once()
    pmu = probes.pmu_type("kprobe")
    if pmu is not None:
        try:
            event = probes.open_pmu_probe(pmu, "kprobe", ret, func, offset)
        except OSError as err:
            if err.errno in (errno.ENOENT, errno.EINVAL):
                raise AttachError(
                    f"cannot attach {kind} to {label!r}: no such kernel function, or it "
                    "cannot be probed (see /sys/kernel/tracing/available_filter_functions)",
                    err.errno,
                ) from err
            raise attach_error(f"{kind} {label!r}", err) from err
        return FdLink(kind, label, bind_to_event(prog_fd, event, f"{kind} {label!r}"))
    if probes.events_file("kprobe") is None:
        raise KernelFeatureError("kprobes", KPROBES_MISSING)
    probe = probes.add_probe_event("kprobe", ret, f"{func}+{offset}", func)
    try:
        event = probes.open_probe_event(probe)
    except OSError as err:
        raise attach_error(f"{kind} {label!r}", err) from err
    try:
        fds = bind_to_event(prog_fd, event, f"{kind} {label!r}")
    except AttachError:
        probe.remove()
        raise
    return FdLink(kind, label, fds, steps=[probe.remove])
