"""bpfnb: explore eBPF in Jupyter."""

import contextlib
from typing import Any

from bpfnb import bpftrace, elf, errors, usdt
from bpfnb.bcc import compile
from bpfnb.elf import load_elf
from bpfnb.errors import (
    AttachError,
    BpfError,
    BpftraceError,
    CompileError,
    ElfError,
    KernelFeatureError,
    PrivilegeError,
    VerifierError,
)
from bpfnb.events import EventStream
from bpfnb.link import Link, sweep_stale_probes
from bpfnb.maps import Map
from bpfnb.object import BpfObject, Program

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # bpfnb.last_error: the last bpfnb error a notebook showed, with its log and diagnostics.
    if name == "last_error":
        return errors.last_error
    raise AttributeError(f"module 'bpfnb' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext bpfnb``: register the magics."""
    from bpfnb.magics import BpfMagics  # defers IPython's magic machinery to %load_ext

    ipython.register_magics(BpfMagics)
    # kprobe/uprobe entries in tracefs left by bpfnb processes that died without closing.
    with contextlib.suppress(OSError):
        sweep_stale_probes()


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext bpfnb``: remove the magics (live objects stay open)."""
    from bpfnb.magics import BpfMagics  # defers IPython's magic machinery to %load_ext

    magics = ipython.magics_manager.magics
    for kind, names in BpfMagics.magics.items():
        for name in names:
            magics[kind].pop(name, None)


__all__ = [
    "AttachError",
    "BpfObject",
    "BpfError",
    "BpftraceError",
    "CompileError",
    "ElfError",
    "EventStream",
    "KernelFeatureError",
    "Link",
    "Map",
    "PrivilegeError",
    "Program",
    "VerifierError",
    "bpftrace",
    "compile",
    "elf",
    "errors",
    "load_elf",
    "load_ipython_extension",
    "unload_ipython_extension",
    "usdt",
]
