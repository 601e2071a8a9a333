"""Kernel features that fail in ways worth explaining: kprobes and BPF tracing programs."""

from __future__ import annotations

import errno
import os

from bpfnb.sys import tracefs

__all__ = ["KPROBES_MISSING", "PMU_DIR", "kprobes_missing_reason", "tracing_refused_reason"]

PMU_DIR = "/sys/bus/event_source/devices"
KPROBES_MISSING = (
    "this kernel was built without CONFIG_KPROBES (no kprobe PMU in "
    f"{PMU_DIR} and no kprobe_events in tracefs)"
)


def kprobes_missing_reason() -> str | None:
    """Why kprobes cannot work here, or None when the kernel offers them."""
    if os.path.exists(os.path.join(PMU_DIR, "kprobe")):
        return None
    root = tracefs.mount_point()
    if root and os.path.exists(os.path.join(root, "kprobe_events")):
        return None
    return KPROBES_MISSING


def tracing_refused_reason(err: int) -> str:
    """Why loading a BPF tracing program (fentry/fexit/kfunc/lsm) failed with ``err``."""
    if err == errno.EPERM:
        return (
            "this kernel refuses BPF tracing programs (EPERM even with CAP_BPF/CAP_SYS_ADMIN): "
            "fentry/fexit trampolines are not available here"
        )
    return f"loading a tracing program failed: {os.strerror(err)}"
