"""fentry/fexit programs (``BPF_PROG_TYPE_TRACING``) on a kernel function, through its BTF.

A tracing program names its target at load time (``attach_btf_id``), so attaching takes only
the program. Some kernels refuse tracing programs outright (no BPF trampoline on the
architecture or in the build): loading one then fails with EPERM even for root.
"""

from __future__ import annotations

import errno

from bpfnb.errors import KernelFeatureError
from bpfnb.link.fdlink import FdLink, attach_error
from bpfnb.sys import bpf
from bpfnb.sys.features import TRACING_REFUSED

__all__ = ["attach_fentry"]


def attach_fentry(prog_fd: int, target: str = "", kind: str = "fentry") -> FdLink:
    """Attach a loaded fentry/fexit/fmod_ret/lsm program where its load named (``target`` and
    ``kind`` label the link).

    BPF_RAW_TRACEPOINT_OPEN with a NULL name is the attach call that works on every kernel since
    tracing programs exist (5.5); it returns a link fd.
    """
    try:
        link = bpf.raw_tracepoint_open(None, prog_fd)
    except OSError as err:
        if err.errno == errno.EPERM:
            raise KernelFeatureError(f"{kind} {target}", TRACING_REFUSED) from err
        raise attach_error(f"{kind} {target}", err) from err
    return FdLink(kind, target, [link])
