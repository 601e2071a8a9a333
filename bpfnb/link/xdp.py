"""XDP programs on a network interface, through a BPF link (closing it detaches)."""

from __future__ import annotations

import errno
import socket

from bpfnb.errors import AttachError, KernelFeatureError
from bpfnb.link.fdlink import FdLink, attach_error
from bpfnb.sys import bpf
from bpfnb.sys.constants import AttachType

__all__ = ["XDP_MODES", "attach_xdp"]

#: ``mode`` -> XDP_FLAGS_*: "auto" lets the kernel pick native (driver) mode when it can.
XDP_MODES = {
    "auto": 0,
    "skb": 1 << 1,
    "generic": 1 << 1,
    "native": 1 << 2,
    "drv": 1 << 2,
    "hw": 1 << 3,
    "offload": 1 << 3,
}


def _ifindex(interface: str | int) -> tuple[int, str]:
    if isinstance(interface, int):
        try:
            return interface, socket.if_indextoname(interface)
        except OSError as err:
            raise AttachError(f"cannot attach XDP: no network interface #{interface}") from err
    try:
        return socket.if_nametoindex(interface), interface
    except OSError as err:
        raise AttachError(f"cannot attach XDP: no network interface {interface!r}") from err


def attach_xdp(prog_fd: int, interface: str | int, mode: str = "auto") -> FdLink:
    """Run an XDP program on every packet ``interface`` (a name or an ifindex) receives.

    ``mode`` is one of :data:`XDP_MODES`. An interface holds one XDP link at a time: EBUSY means
    another program is already attached.
    """
    try:
        flags = XDP_MODES[mode]
    except KeyError:
        raise ValueError(f"XDP mode must be one of {sorted(XDP_MODES)}, not {mode!r}") from None
    ifindex, name = _ifindex(interface)
    label = name if mode == "auto" else f"{name} ({mode})"
    try:
        link = bpf.link_create(prog_fd, ifindex, AttachType.XDP, flags)
    except OSError as err:
        if err.errno == errno.EBUSY:
            raise AttachError(
                f"cannot attach XDP to {name}: it already has an XDP program", err.errno
            ) from err
        if err.errno == errno.EINVAL and mode == "auto":
            # XDP links came with Linux 5.9 (commit aa8d3a716b59); older kernels need the
            # netlink IFLA_XDP attach, which bpfnb does not implement.
            raise KernelFeatureError(
                "XDP links",
                f"BPF_LINK_CREATE for XDP failed with EINVAL on {name}: this "
                "kernel may predate Linux 5.9",
            ) from err
        raise attach_error(f"XDP to {label}", err) from err
    return FdLink("xdp", label, [link])
