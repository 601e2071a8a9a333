"""Where a uprobe goes: a library or program found by name, and a symbol's file offset."""

from __future__ import annotations

import ctypes as ct
import functools
import os
import shutil
import subprocess

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from bpfnb.errors import AttachError

__all__ = ["find_binary", "find_library", "symbol_offset"]

LIBRARY_DIRS = (
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
)


@functools.cache
def _ldconfig_cache() -> dict[str, str]:
    # `ldconfig -p` lines: "\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6".
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        out = subprocess.run(
            [ldconfig, "-p"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[str, str] = {}
    for line in out.splitlines()[1:]:
        name, arrow, path = line.strip().partition(" => ")
        if arrow:
            found.setdefault(name.split(" (", 1)[0], path.strip())
    return found


def _is_native_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            return bool(elf.elfclass == 8 * ct.sizeof(ct.c_void_p))
    except (OSError, ELFError):
        return False


def find_library(name: str) -> str | None:
    """The path of shared library ``name``: "c" finds libc.so.6, as ``-lc`` would."""
    stem = name if name.startswith("lib") else f"lib{name}"
    cache = _ldconfig_cache()
    candidates = [name, f"{stem}.so"] + sorted(
        (lib for lib in cache if lib.startswith(f"{stem}.so.")), key=len
    )
    for candidate in candidates:
        path = cache.get(candidate)
        if path and _is_native_elf(path):
            return os.path.realpath(path)
    for directory in LIBRARY_DIRS:
        if not os.path.isdir(directory):
            continue
        for entry in sorted(os.listdir(directory), key=len):
            if entry in (name, f"{stem}.so") or entry.startswith(f"{stem}.so."):
                path = os.path.join(directory, entry)
                if _is_native_elf(path):
                    return os.path.realpath(path)
    return None


def find_binary(path_or_name: str) -> str:
    """A file to probe: a path, a library name ("c", "libssl.so.3") or a program on PATH."""
    if "/" in path_or_name:
        if not os.path.exists(path_or_name):
            raise AttachError(f"cannot attach uprobe: {path_or_name} does not exist")
        return os.path.realpath(path_or_name)
    found = find_library(path_or_name) or shutil.which(path_or_name)
    if found is None:
        raise AttachError(
            f"cannot attach uprobe: no library or program named {path_or_name!r} "
            "(not in `ldconfig -p`, the standard library directories or PATH)"
        )
    return os.path.realpath(found)


def _vaddr_to_offset(elf: ELFFile, vaddr: int, path: str, symbol: str) -> int:
    for segment in elf.iter_segments():
        if segment["p_type"] != "PT_LOAD":
            continue
        start = segment["p_vaddr"]
        if start <= vaddr < start + segment["p_memsz"]:
            return int(vaddr - start + segment["p_offset"])
    raise AttachError(f"cannot attach uprobe: {symbol} in {path} is not in a loadable segment")


def _ifunc_target_offset(path: str, symbol: str) -> int:
    # An IFUNC symbol's address is its resolver. Loading the library here lets the dynamic linker
    # pick the implementation for this CPU (as it will in every other process on the machine);
    # /proc/self/maps then turns that address back into an offset in the same file.
    lib = ct.CDLL(path)
    address = ct.cast(getattr(lib, symbol), ct.c_void_p).value or 0
    real = os.path.realpath(path)
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) < 6 or os.path.realpath(fields[5]) != real:
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= address < hi:
                return address - lo + int(fields[2], 16)
    raise AttachError(f"cannot attach uprobe: cannot resolve IFUNC {symbol} in {path}")


def symbol_offset(path: str, symbol: str) -> int:
    """The file offset of function ``symbol`` in ELF file ``path`` (``.symtab``, then
    ``.dynsym``); ``"sym+0x10"`` adds an offset."""
    extra = 0
    if "+" in symbol:
        symbol, _, add = symbol.partition("+")
        extra = int(add, 0)
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for table_name in (".symtab", ".dynsym"):
                table = elf.get_section_by_name(table_name)
                if not isinstance(table, SymbolTableSection):
                    continue
                for sym in table.get_symbol_by_name(symbol) or ():
                    if sym["st_value"] == 0 or sym["st_shndx"] == "SHN_UNDEF":
                        continue
                    is_ifunc = sym["st_info"]["type"] == "STT_LOOS"  # STT_GNU_IFUNC
                    if is_ifunc and elf.header["e_type"] == "ET_DYN":
                        return _ifunc_target_offset(path, symbol) + extra
                    return _vaddr_to_offset(elf, sym["st_value"], path, symbol) + extra
    except (OSError, ELFError) as err:
        raise AttachError(f"cannot attach uprobe: cannot read {path} as ELF: {err}") from err
    raise AttachError(f"cannot attach uprobe: no function {symbol!r} in {path}")
