"""cgroup programs (``cgroup_skb``, ``cgroup/sock``...) on a cgroup v2 directory."""

from __future__ import annotations

import contextlib
import os

from bpfnb.errors import AttachError
from bpfnb.link.fdlink import NOT_SUPPORTED, FdLink, attach_error
from bpfnb.sys import bpf, mounts
from bpfnb.sys.constants import AttachType
from bpfnb.sys.fd import FD

__all__ = ["CGROUP_ATTACH_TYPES", "attach_cgroup", "resolve_cgroup"]

BPF_F_ALLOW_MULTI = 2

#: Readable names of the cgroup attach types.
CGROUP_ATTACH_TYPES: dict[str, AttachType] = {
    "ingress": AttachType.CGROUP_INET_INGRESS,
    "egress": AttachType.CGROUP_INET_EGRESS,
    "sock_create": AttachType.CGROUP_INET_SOCK_CREATE,
    "sock_release": AttachType.CGROUP_INET_SOCK_RELEASE,
    "sock_ops": AttachType.CGROUP_SOCK_OPS,
    "device": AttachType.CGROUP_DEVICE,
    "bind4": AttachType.CGROUP_INET4_BIND,
    "bind6": AttachType.CGROUP_INET6_BIND,
    "connect4": AttachType.CGROUP_INET4_CONNECT,
    "connect6": AttachType.CGROUP_INET6_CONNECT,
    "post_bind4": AttachType.CGROUP_INET4_POST_BIND,
    "post_bind6": AttachType.CGROUP_INET6_POST_BIND,
    "sendmsg4": AttachType.CGROUP_UDP4_SENDMSG,
    "sendmsg6": AttachType.CGROUP_UDP6_SENDMSG,
    "recvmsg4": AttachType.CGROUP_UDP4_RECVMSG,
    "recvmsg6": AttachType.CGROUP_UDP6_RECVMSG,
    "sysctl": AttachType.CGROUP_SYSCTL,
    "getsockopt": AttachType.CGROUP_GETSOCKOPT,
    "setsockopt": AttachType.CGROUP_SETSOCKOPT,
}


def resolve_cgroup(path: str) -> str:
    """An existing cgroup v2 directory: ``path`` itself, or relative to the cgroup2 mount."""
    candidates = [path]
    root = mounts.mount_point_of("cgroup2")
    if root and not os.path.isabs(path):
        candidates.insert(0, os.path.join(root, path))
    for candidate in candidates:
        if os.path.isdir(candidate):
            return os.path.realpath(candidate)
    where = f" (cgroup v2 is mounted at {root})" if root else " (no cgroup v2 is mounted)"
    raise AttachError(f"cannot attach to cgroup {path!r}: no such directory{where}")


def _attach_type(attach_type: str | int) -> AttachType:
    if isinstance(attach_type, str):
        try:
            return CGROUP_ATTACH_TYPES[attach_type]
        except KeyError:
            known = ", ".join(CGROUP_ATTACH_TYPES)
            raise ValueError(
                f"unknown cgroup attach type {attach_type!r}; known: {known}"
            ) from None
    return AttachType(attach_type)


def attach_cgroup(prog_fd: int, cgroup_path: str, attach_type: str | int = "ingress") -> FdLink:
    """Attach a cgroup program to a cgroup v2 directory, alongside any programs already there.

    ``attach_type`` is a name from :data:`CGROUP_ATTACH_TYPES` (``"ingress"``, ``"egress"``,
    ``"sock_create"``...) or an :class:`~bpfnb.sys.AttachType`.
    """
    kind = _attach_type(attach_type)
    path = resolve_cgroup(cgroup_path)
    label = f"{path} ({kind.name.lower()})"
    if mounts.fs_magic(path) not in (mounts.CGROUP2_SUPER_MAGIC, None):
        raise AttachError(f"cannot attach to cgroup {path}: not a cgroup v2 directory")
    cgroup = FD(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    try:
        link = bpf.link_create(prog_fd, cgroup.fileno(), kind)
    except OSError as err:
        if err.errno not in NOT_SUPPORTED:
            cgroup.close()
            raise attach_error(f"cgroup program to {label}", err) from err
    else:
        cgroup.close()
        return FdLink("cgroup", label, [link])
    # cgroup links need Linux 5.7 (commit af6eea57437a); before, BPF_PROG_ATTACH with
    # ALLOW_MULTI, undone by a PROG_DETACH that names the program, so keep a duplicate of it.
    program = FD(os.dup(prog_fd))
    try:
        bpf.prog_attach(program.fileno(), cgroup.fileno(), kind, BPF_F_ALLOW_MULTI)
    except OSError as err:
        program.close()
        cgroup.close()
        raise attach_error(f"cgroup program to {label}", err) from err

    def detach() -> None:
        with contextlib.suppress(OSError):
            bpf.prog_detach(program.fileno(), cgroup.fileno(), kind)
        program.close()
        cgroup.close()

    return FdLink("cgroup", label, steps=[detach])
