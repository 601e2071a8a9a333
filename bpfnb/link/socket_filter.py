"""Socket filter programs on one socket (SO_ATTACH_BPF), or on a raw packet socket bound to a
network interface, which sees every packet crossing it."""

from __future__ import annotations

import contextlib
import os
import socket

from bpfnb.errors import AttachError
from bpfnb.link.fdlink import FdLink, attach_error

__all__ = ["SocketFilterLink", "attach_socket_filter", "open_packet_socket"]

SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27  # the same option as SO_DETACH_FILTER
ETH_P_ALL = 0x0003


class SocketFilterLink(FdLink):
    """A socket filter; ``socket`` is the socket it filters.

    ``close()`` takes the filter off the socket, and closes the socket when bpfnb opened it.
    """

    def __init__(self, target: str, sock: socket.socket, owned: bool) -> None:
        steps = [lambda: _detach(sock)]
        if owned:
            steps.append(sock.close)
        super().__init__("socket_filter", target, steps=steps)
        self.socket = sock


def _detach(sock: socket.socket) -> None:
    # The user's socket may already be closed; then there is nothing left to detach from.
    if sock.fileno() >= 0:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_BPF, 0)


def open_packet_socket(ifname: str) -> socket.socket:
    """A raw ``AF_PACKET`` socket receiving every packet on interface ``ifname``."""
    try:
        socket.if_nametoindex(ifname)
    except OSError as err:
        raise AttachError(f"cannot attach socket filter: no network interface {ifname!r}") from err
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.setblocking(False)
        sock.bind((ifname, ETH_P_ALL))
    except OSError:
        sock.close()
        raise
    return sock


def attach_socket_filter(prog_fd: int, sock_or_ifname: socket.socket | int | str) -> FdLink:
    """Filter a socket with a socket filter program.

    Given an interface name, bpfnb opens a raw packet socket bound to it, which the link owns and
    closes (and exposes as ``link.socket`` for reading what the filter keeps). Given a socket or
    its fd, the filter goes on it and ``close()`` takes it off again.
    """
    if isinstance(sock_or_ifname, str):
        target = sock_or_ifname
        try:
            sock = open_packet_socket(sock_or_ifname)
        except OSError as err:
            raise attach_error(f"socket filter on {target!r}", err) from err
        owned = True
    elif isinstance(sock_or_ifname, int):
        target = f"fd {sock_or_ifname}"
        # A socket object on a duplicate fd names the same kernel socket; the link closes only
        # the duplicate, after taking the filter off.
        duplicate = os.dup(sock_or_ifname)
        try:
            sock = socket.socket(fileno=duplicate)
        except OSError as err:
            os.close(duplicate)
            raise attach_error(f"socket filter on {target}: not a socket", err) from err
        owned = True
    else:
        sock = sock_or_ifname
        target = f"fd {sock.fileno()}"
        owned = False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, prog_fd)
    except OSError as err:
        if owned:
            sock.close()
        raise attach_error(f"socket filter on {target}", err) from err
    return SocketFilterLink(target, sock, owned)
