"""fentry/fexit programs (``BPF_PROG_TYPE_TRACING``) on a kernel function, through its BTF.

A tracing program names its target at load time (``attach_btf_id``), so attaching takes only
the program. Some kernels refuse tracing programs outright (no BPF trampoline on the
architecture or in the build): loading one then fails with EPERM even for root.
"""

from __future__ import annotations

import errno

from bpfnb.errors import KernelFeatureError
from bpfnb.link.base import FdLink, attach_error
from bpfnb.sys.attrs import RawTracepointOpenAttr
from bpfnb.sys.constants import Cmd
from bpfnb.sys.fd import FD
from bpfnb.sys.syscall import bpf

__all__ = ["TRACING_REFUSED", "attach_fentry", "tracing_load_error"]

TRACING_REFUSED = (
    "this kernel refuses tracing programs (loading one fails with EPERM even as root): "
    "there are no BPF trampolines here, so fentry/fexit cannot work; use a kprobe or a "
    "tracepoint instead"
)


def tracing_load_error(err: OSError, section: str) -> Exception:
    """The error to raise when loading the tracing program in ``section`` failed with ``err``."""
    if err.errno == errno.EPERM:
        return KernelFeatureError(f"fentry/fexit ({section})", TRACING_REFUSED)
    return err


def attach_fentry(prog_fd: int, target: str = "", kind: str = "fentry") -> FdLink:
    """Attach a loaded fentry/fexit/fmod_ret program where its load named (``target`` labels it).

    BPF_RAW_TRACEPOINT_OPEN with a NULL name is the attach call that works on every kernel since
    tracing programs exist (5.5); it returns a link fd.
    """
    try:
        link = FD(bpf(Cmd.RAW_TRACEPOINT_OPEN, RawTracepointOpenAttr(name=0, prog_fd=prog_fd)))
    except OSError as err:
        if err.errno == errno.EPERM:
            raise KernelFeatureError(f"{kind} {target}", TRACING_REFUSED) from err
        raise attach_error(f"{kind} {target}", err) from err
    return FdLink(kind, target, [link])
