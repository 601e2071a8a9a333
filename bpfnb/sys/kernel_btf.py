"""Where the running kernel publishes its BTF (``CONFIG_DEBUG_INFO_BTF``)."""

from __future__ import annotations

import os

__all__ = ["BTF_DIR", "VMLINUX_BTF", "file_identity", "module_btf_path", "read_vmlinux_btf"]

BTF_DIR = "/sys/kernel/btf"
VMLINUX_BTF = os.path.join(BTF_DIR, "vmlinux")


def file_identity(path: str) -> tuple[int, int, int, int]:
    """(device, inode, size, mtime) of ``path``: changes when the file is replaced."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def module_btf_path(module: str) -> str:
    """The BTF file of a loaded kernel module (it exists only while the module is loaded)."""
    return os.path.join(BTF_DIR, module)


def read_vmlinux_btf() -> bytes:
    """The kernel's own BTF; ``OSError`` when the kernel publishes none."""
    with open(VMLINUX_BTF, "rb") as f:
        return f.read()
