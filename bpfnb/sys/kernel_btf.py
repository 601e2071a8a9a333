"""Where the running kernel publishes its BTF (``CONFIG_DEBUG_INFO_BTF``)."""

from __future__ import annotations

import mmap
import os

__all__ = [
    "BTF_DIR",
    "VMLINUX_BTF",
    "file_identity",
    "module_btf_path",
    "read_btf_file",
    "read_vmlinux_btf",
]

BTF_DIR = "/sys/kernel/btf"
VMLINUX_BTF = os.path.join(BTF_DIR, "vmlinux")


def file_identity(path: str) -> tuple[int, int, int, int]:
    """(device, inode, size, mtime) of ``path``: changes when the file is replaced."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def module_btf_path(module: str) -> str:
    """The BTF file of a loaded kernel module (it exists only while the module is loaded)."""
    return os.path.join(BTF_DIR, module)


def read_btf_file(path: str) -> bytes | mmap.mmap:
    """A BTF file's bytes: mapped read-only where the kernel allows it (its own BTF, since Linux
    6.16), which costs no copy of its megabytes; read otherwise."""
    with open(path, "rb") as f:
        try:
            return mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        except (OSError, ValueError):
            return f.read()


def read_vmlinux_btf() -> bytes | mmap.mmap:
    """The kernel's own BTF (see :func:`read_btf_file`); ``OSError`` when the kernel publishes
    none."""
    return read_btf_file(VMLINUX_BTF)
