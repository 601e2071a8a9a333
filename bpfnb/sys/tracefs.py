"""Where tracefs lives and what it says about tracepoints."""

from __future__ import annotations

import os

__all__ = ["mount_point", "tracepoint_id"]

_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def mount_point() -> str | None:
    """The tracefs directory, or None when tracefs is not mounted."""
    for path in _CANDIDATES:
        if os.path.exists(os.path.join(path, "events")):
            return path
    return None


def tracepoint_id(category: str, name: str) -> int:
    """The perf id of tracepoint ``category:name``; ``FileNotFoundError`` when it doesn't exist."""
    root = mount_point()
    if root is None:
        raise FileNotFoundError("tracefs is not mounted (expected /sys/kernel/tracing)")
    with open(os.path.join(root, "events", category, name, "id")) as f:
        return int(f.read())
