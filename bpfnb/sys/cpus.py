"""Which CPUs exist (``possible``) and which run now (``online``), from sysfs."""

from __future__ import annotations

import functools

__all__ = ["online_cpus", "parse_cpu_list", "possible_cpus"]


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """The CPU ids of a kernel CPU list such as ``0-3,6``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if part:
            first, _, last = part.partition("-")
            cpus.extend(range(int(first), int(last or first) + 1))
    return tuple(cpus)


def _read(kind: str) -> tuple[int, ...]:
    with open(f"/sys/devices/system/cpu/{kind}") as f:
        return parse_cpu_list(f.read())


@functools.cache
def possible_cpus() -> tuple[int, ...]:
    """The possible CPUs: per-CPU map values hold one slot for each."""
    return _read("possible")


def online_cpus() -> tuple[int, ...]:
    """The CPUs online now (read afresh each call: CPUs can go on and offline)."""
    return _read("online")
