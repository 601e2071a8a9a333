"""Which CPUs a per-CPU map holds a value for."""

from __future__ import annotations

import functools

__all__ = ["parse_cpu_list", "possible_cpus"]

_POSSIBLE = "/sys/devices/system/cpu/possible"


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """The CPU ids of a kernel CPU list such as ``0-3,6``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return tuple(cpus)


@functools.cache
def possible_cpus() -> tuple[int, ...]:
    """The possible CPUs, in the order the kernel lays out per-CPU values (one slot each)."""
    with open(_POSSIBLE) as f:
        return parse_cpu_list(f.read())
