"""Effective capabilities of this process, read from ``/proc/self/status``."""

from __future__ import annotations

__all__ = ["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON", "CAP_SYS_ADMIN", "effective", "has"]

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39

NAMES = {
    CAP_NET_ADMIN: "CAP_NET_ADMIN",
    CAP_SYS_ADMIN: "CAP_SYS_ADMIN",
    CAP_PERFMON: "CAP_PERFMON",
    CAP_BPF: "CAP_BPF",
}


def effective() -> int:
    """The effective capability mask (``CapEff``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def has(cap: int) -> bool:
    """Whether the process holds ``cap`` in its effective set."""
    return bool(effective() >> cap & 1)


def can_bpf() -> bool:
    """Whether the process may load BPF programs (CAP_BPF, or CAP_SYS_ADMIN before 5.8)."""
    return has(CAP_BPF) or has(CAP_SYS_ADMIN)
