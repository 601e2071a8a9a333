"""struct_ops maps (``SEC(".struct_ops")``): a kernel operations table, such as a TCP
congestion control, whose functions are BPF programs. Attaching registers it with the kernel.

The map's value is the kernel's ``struct bpf_struct_ops_<name>`` with the programs' fds in its
function slots; writing it registers the table (BPF_MAP_UPDATE_ELEM), and deleting it
unregisters. A ``.struct_ops.link`` map (``BPF_F_LINK``) registers through a BPF link instead,
which unregisters when closed.
"""

from __future__ import annotations

import ctypes as ct
import errno
from dataclasses import dataclass, field

from bpfnb.errors import AttachError
from bpfnb.link.fdlink import FdLink, attach_error
from bpfnb.sys import bpf
from bpfnb.sys.constants import AttachType

__all__ = ["BPF_F_LINK", "StructOps", "attach_struct_ops"]

BPF_F_LINK = 1 << 13  # a struct_ops map attached through a BPF link


@dataclass(frozen=True)
class StructOps:
    """A struct_ops map ready to register: its fd, and its value in the kernel's layout with
    the programs' fds in place."""

    name: str
    map_fd: int
    value: bytes = field(repr=False)
    link: bool = False
    programs: tuple[str, ...] = ()


def attach_struct_ops(ops: StructOps) -> FdLink:
    """Register ``ops`` with the kernel; the link's ``close()`` unregisters it."""
    key = ct.c_uint32(0)
    value = ct.create_string_buffer(ops.value, len(ops.value))
    try:
        bpf.map_update(ops.map_fd, key, value)
    except OSError as err:
        # A link-type map whose value is already set (a link was made before) keeps it.
        if not (ops.link and err.errno == errno.EBUSY):
            if err.errno == errno.EBUSY:
                raise AttachError(
                    f"cannot register struct_ops {ops.name} again: the kernel registers a "
                    "struct_ops map once (load the object again, or declare it in "
                    'SEC(".struct_ops.link") to register it through links)',
                    err.errno,
                ) from err
            raise attach_error(f"struct_ops {ops.name}", err) from err
    if not ops.link:
        return FdLink("struct_ops", ops.name, steps=[lambda: _unregister(ops)])
    try:
        link = bpf.link_create(ops.map_fd, 0, AttachType.STRUCT_OPS)
    except OSError as err:
        raise attach_error(f"struct_ops {ops.name}", err) from err
    return FdLink("struct_ops", ops.name, [link])


def _unregister(ops: StructOps) -> None:
    try:
        bpf.map_delete(ops.map_fd, ct.c_uint32(0))
    except OSError as err:
        raise AttachError(f"cannot unregister struct_ops {ops.name}", err.errno) from err
