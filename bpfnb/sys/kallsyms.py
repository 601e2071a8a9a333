"""Kernel symbols by name from ``/proc/kallsyms`` (what libbpf reads for typeless ``__ksym``
externs, and what tells the syscall wrappers apart).

The file is several MB of text that the kernel generates on each read, so it is read once per
question and searched for the names asked, never parsed line by line. Addresses read as 0
without CAP_SYSLOG (``kernel.kptr_restrict``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

__all__ = ["KALLSYMS", "Symbol", "lookup"]

KALLSYMS = "/proc/kallsyms"

Symbol = tuple[int, str]  # (address, type letter: T t D d B b R r ...)


def _read(path: str | os.PathLike[str]) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _line_at(data: bytes, end: int) -> tuple[int, str] | None:
    # The "ADDRESS TYPE " that starts the line holding position ``end``.
    start = data.rfind(b"\n", 0, end) + 1
    fields = data[start:end].split()
    if len(fields) != 2 or len(fields[1]) != 1:
        return None
    try:
        return int(fields[0], 16), fields[1].decode()
    except ValueError:
        return None


def lookup(
    names: Iterable[str], path: str | os.PathLike[str] = KALLSYMS
) -> dict[str, list[Symbol]]:
    """Every (address, type) of each of ``names``, modules' symbols included; a name the
    kernel lacks is missing from the result. ``OSError`` when the file cannot be read.

    A data symbol that LLVM renamed (``name.llvm.1234``) counts as ``name``, as libbpf counts it.
    """
    data = _read(path)
    found: dict[str, list[Symbol]] = {}
    for name in dict.fromkeys(names):
        key = b" " + name.encode()
        at = data.find(key)
        while at >= 0:
            end = at + len(key)
            tail = data[end : end + 7]
            if tail[:1] in (b"\n", b"\t", b"") or tail.startswith(b".llvm."):
                head = _line_at(data, at)
                if head is not None and (not tail.startswith(b".llvm.") or head[1] in "dD"):
                    found.setdefault(name, []).append(head)
            at = data.find(key, end)
    return found
