"""Names for instruction pointers: kernel symbols from ``/proc/kallsyms``, user symbols from the
ELF files a process has mapped (read with pyelftools).

A user address is found in ``/proc/PID/maps``, turned into a file offset, then into the ELF's
virtual address through its ``PT_LOAD`` segments, and named by the function symbol
(``.symtab``, else ``.dynsym``) that contains it; without one it reads ``module+0xoffset``.
"""

from __future__ import annotations

import bisect
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

__all__ = ["ElfSymbols", "KernelSymbols", "kernel_symbols", "user_symbolizer"]


class KernelSymbols:
    """Kernel text symbols from ``/proc/kallsyms``, looked up by address."""

    def __init__(self, path: str = "/proc/kallsyms") -> None:
        addresses: list[int] = []
        names: list[str] = []
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3 or parts[1] not in "tTwW":
                    continue
                address = int(parts[0], 16)
                if address:
                    addresses.append(address)
                    names.append(parts[2])
        order = np.argsort(np.array(addresses, dtype=np.uint64), kind="stable")
        self._addresses = [addresses[i] for i in order]
        self._names = [names[i] for i in order]

    def __len__(self) -> int:
        return len(self._names)

    def name(self, address: int) -> str:
        """The symbol containing ``address``, or its hex form when none does."""
        index = bisect.bisect_right(self._addresses, address) - 1
        return self._names[index] if index >= 0 else f"{address:#x}"


@functools.cache
def kernel_symbols() -> KernelSymbols:
    """The kernel's symbols, read once (addresses are zero unless root: then names are hex)."""
    return KernelSymbols()


class ElfSymbols:
    """The function symbols of one ELF file, and how its file offsets map to addresses."""

    def __init__(self, path: str) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._names: list[str] = []
        self._segments: list[tuple[int, int, int]] = []  # (file offset, size, vaddr)
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for segment in elf.iter_segments():
                if segment["p_type"] == "PT_LOAD":
                    self._segments.append(
                        (segment["p_offset"], segment["p_filesz"], segment["p_vaddr"])
                    )
            symbols: dict[int, tuple[int, str]] = {}
            for name in (".symtab", ".dynsym"):
                table = elf.get_section_by_name(name)
                if not isinstance(table, SymbolTableSection):
                    continue
                for sym in table.iter_symbols():
                    kind = sym["st_info"]["type"]
                    if kind in ("STT_FUNC", "STT_GNU_IFUNC") and sym["st_value"] and sym.name:
                        symbols.setdefault(sym["st_value"], (sym["st_size"], sym.name))
                if symbols:
                    break  # .symtab holds everything .dynsym does
        for start in sorted(symbols):
            size, name = symbols[start]
            self._starts.append(start)
            self._ends.append(start + max(size, 1))
            self._names.append(name)

    def address(self, file_offset: int) -> int | None:
        """The virtual address (as symbols give them) of a file offset, or None."""
        for offset, size, vaddr in self._segments:
            if offset <= file_offset < offset + size:
                return file_offset - offset + vaddr
        return None

    def name(self, address: int) -> str | None:
        """The function containing ``address``, or None."""
        index = bisect.bisect_right(self._starts, address) - 1
        if index >= 0 and address < self._ends[index]:
            return self._names[index]
        return None


@functools.lru_cache(maxsize=256)
def _elf_symbols(path: str, identity: tuple[int, int, int]) -> ElfSymbols | None:
    # Keyed on the file's identity too: a rebuilt library must not keep its old symbols.
    try:
        return ElfSymbols(path)
    except (OSError, ELFError, ValueError):
        return None


@dataclass(frozen=True)
class _Mapping:
    start: int
    end: int
    offset: int
    path: str


def _mappings(pid: int) -> list[_Mapping]:
    found = []
    try:
        with open(f"/proc/{pid}/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or not fields[5].startswith("/") or "x" not in fields[1]:
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        found.append(_Mapping(start, end, int(fields[2], 16), fields[5]))
    return found


def _open_path(pid: int, path: str) -> tuple[str, tuple[int, int, int]] | None:
    # The file as the process sees it (its mount namespace), else as we do.
    for candidate in (f"/proc/{pid}/root{path}", path):
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        return candidate, (st.st_dev, st.st_ino, st.st_mtime_ns)
    return None


def user_symbolizer(pid: int) -> Callable[[int], str]:
    """A function naming user-space addresses of process ``pid``.

    The process's mappings are read once, when this is made; an address outside every
    file-backed mapping (or of a process that is gone) is shown in hex.
    """
    mappings = _mappings(pid)
    starts = [m.start for m in mappings]

    def name(address: int) -> str:
        index = bisect.bisect_right(starts, address) - 1
        if index < 0 or address >= mappings[index].end:
            return f"{address:#x}"
        mapping = mappings[index]
        file_offset = address - mapping.start + mapping.offset
        opened = _open_path(pid, mapping.path)
        symbols = _elf_symbols(*opened) if opened else None
        vaddr = symbols.address(file_offset) if symbols else None
        found = symbols.name(vaddr) if symbols and vaddr is not None else None
        return found or f"{os.path.basename(mapping.path)}+{file_offset:#x}"

    return name
