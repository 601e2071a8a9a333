"""Kernel features: those that fail in ways worth explaining (kprobes, BPF tracing programs),
and those libbpf probes to fill its ``LINUX_HAS_*`` externs (BPF cookies, syscall wrappers)."""

from __future__ import annotations

import errno
import functools
import os
import platform

from bpfnb.errors import KernelFeatureError
from bpfnb.sys import bpf, tracefs
from bpfnb.sys.constants import ProgType

__all__ = [
    "KPROBES_MISSING",
    "PMU_DIR",
    "TRACING_REFUSED",
    "bpf_cookie",
    "kprobes_missing_reason",
    "syscall_wrapper_prefix",
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


BPF_FUNC_GET_ATTACH_COOKIE = 174
# ``call bpf_get_attach_cookie; exit``
_COOKIE_PROBE = bytes.fromhex("85000000ae0000009500000000000000")


@functools.cache
def bpf_cookie() -> bool:
    """Whether programs may call ``bpf_get_attach_cookie()`` (Linux 5.15, commit 7adfc6c9b315):
    probed as libbpf probes it, by loading a tracepoint program that calls it."""
    try:
        bpf.prog_load(ProgType.TRACEPOINT, _COOKIE_PROBE, "GPL").close()
    except OSError:  # a VerifierError too: the helper is unknown
        return False
    return True


# The prefix of the kernel's syscall entry functions where they go through per-architecture
# wrappers (since Linux 4.17, commit d5a00528b58c): __x64_sys_bpf and so on, as libbpf names
# them.
_WRAPPER_ARCH = {
    "x86_64": "x64",
    "i386": "ia32",
    "i686": "ia32",
    "s390x": "s390x",
    "s390": "s390",
    "armv7l": "arm",
    "aarch64": "arm64",
    "mips": "mips",
    "mips64": "mips",
    "riscv64": "riscv",
    "ppc": "powerpc",
    "ppc64": "powerpc64",
    "ppc64le": "powerpc64",
}


def syscall_wrapper_prefix(machine: str | None = None) -> str | None:
    """``"__x64_sys_"`` and the like: how syscall wrappers are named on this architecture, or
    None where libbpf knows of none."""
    arch = _WRAPPER_ARCH.get(machine or platform.machine())
    return f"__{arch}_sys_" if arch else None
