"""Kernel features that fail in ways worth explaining: kprobes and BPF tracing programs."""

from __future__ import annotations

import errno
import os

from bpfnb.errors import KernelFeatureError
from bpfnb.sys import tracefs

__all__ = [
    "KPROBES_MISSING",
    "PMU_DIR",
    "TRACING_REFUSED",
    "kprobes_missing_reason",
    "tracing_load_error",
]

PMU_DIR = "/sys/bus/event_source/devices"
KPROBES_MISSING = (
    "this kernel was built without CONFIG_KPROBES (no kprobe PMU in "
    f"{PMU_DIR} and no kprobe_events in tracefs)"
)
TRACING_REFUSED = (
    "this kernel refuses tracing programs (loading one fails with EPERM even with "
    "CAP_BPF/CAP_SYS_ADMIN): there are no BPF trampolines here, so fentry/fexit cannot work; "
    "use a kprobe or a tracepoint instead"
)


def kprobes_missing_reason() -> str | None:
    """Why kprobes cannot work here, or None when the kernel offers them."""
    if os.path.exists(os.path.join(PMU_DIR, "kprobe")):
        return None
    root = tracefs.mount_point()
    if root and os.path.exists(os.path.join(root, "kprobe_events")):
        return None
    return KPROBES_MISSING


def tracing_load_error(err: OSError, what: str) -> Exception:
    """The error for a tracing program (fentry/fexit/lsm, ``what``) that failed to load with
    ``err``: EPERM as root means the kernel refuses them all."""
    if err.errno == errno.EPERM:
        return KernelFeatureError(what, TRACING_REFUSED)
    return err
