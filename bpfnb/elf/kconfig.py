"""``__kconfig`` externs: values from the running kernel's build configuration.

libbpf-style code declares ``extern u32 LINUX_KERNEL_VERSION __kconfig;`` or
``extern bool CONFIG_BPF_JIT __kconfig __weak;``; clang leaves them undefined, in a ``.kconfig``
BTF DATASEC. bpfnb lays them out in a read-only ``.kconfig`` array map and fills it at load from
``/proc/config.gz`` (or ``/boot/config-RELEASE``).
"""

from __future__ import annotations

import gzip
import os
import sys

from bpfnb.elf.btf import INT_BOOL, INT_CHAR, Btf
from bpfnb.elf.variables import Variable, encode_value
from bpfnb.errors import KernelFeatureError

__all__ = ["KCONFIG", "kconfig_data", "kernel_config", "layout", "version_code"]

KCONFIG = ".kconfig"
_TRISTATE = {"n": 0, "y": 1, "m": 2}


def layout(btf: Btf) -> list[tuple[str, int, int, int]]:
    """(name, offset, size, type id) of each ``.kconfig`` extern, naturally aligned, in order."""
    datasec = btf.find(KCONFIG, "DATASEC")
    if datasec is None:
        return []
    out = []
    end = 0
    for entry in datasec.members:
        var = btf.type(entry.type_id)
        if var.kind != "VAR":
            continue
        size = btf.size_of(var.type_id)
        align = min(size & -size, 8) if size else 1
        offset = (end + align - 1) // align * align
        out.append((var.name, offset, size, var.type_id))
        end = offset + size
    return out


def kernel_config(release: str | None = None) -> dict[str, str]:
    """``CONFIG_*`` values of the running kernel (``"y"``, ``"m"``, ``"n"``, numbers, strings)."""
    release = release or os.uname().release
    text = None
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            text = f.read()
    except OSError:
        try:
            with open(f"/boot/config-{release}") as f:
                text = f.read()
        except OSError as err:
            raise KernelFeatureError(
                "__kconfig externs",
                "the kernel's configuration is not readable (no /proc/config.gz, no "
                f"/boot/config-{release})",
            ) from err
    config: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("CONFIG_") and "=" in line:
            name, value = line.split("=", 1)
            config[name] = value
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            config[line[2:].split()[0]] = "n"
    return config


def _value(var: Variable, btf: Btf, raw: str) -> object:
    # A config value as the C type of its extern wants it.
    t = btf.skip_modifiers(var.type_id)
    if raw in _TRISTATE:
        if t.kind == "ENUM":  # enum libbpf_tristate
            return _TRISTATE[raw]
        if t.kind == "INT" and t.encoding & INT_BOOL:
            if raw == "m":
                raise KernelFeatureError(var.name, "is a module (m), which a bool cannot hold")
            return int(raw == "y")
        if t.kind == "INT" and t.size == 1 and (t.encoding & INT_CHAR or t.name == "char"):
            return raw.encode()
        raise KernelFeatureError(var.name, f"is {raw!r}, which its C type cannot hold")
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return raw[1:-1].encode()[: max(var.size - 1, 0)]  # C strings keep their NUL
    try:
        return int(raw, 0)
    except ValueError:
        raise KernelFeatureError(var.name, f"has the unexpected value {raw!r}") from None


def kconfig_data(
    variables: list[Variable],
    weak: dict[str, bool],
    btf: Btf,
    size: int,
    config: dict[str, str] | None = None,
    release: str | None = None,
) -> bytes:
    """The ``.kconfig`` map's value: each extern's value from the kernel, zero for a missing
    ``__weak`` one."""
    release = release or os.uname().release
    data = bytes(size)
    for var in variables:
        if var.name == "LINUX_KERNEL_VERSION":
            value: object = version_code(release)
        else:
            if config is None:
                config = kernel_config(release)
            raw = config.get(var.name)
            if raw is None:
                if weak.get(var.name):
                    continue
                raise KernelFeatureError(var.name, "is not in this kernel's configuration")
            value = _value(var, btf, raw)
        try:
            data = encode_value(var, value, data, sys.byteorder)
        except (TypeError, ValueError) as err:
            raise KernelFeatureError(
                var.name, f"its value does not fit its C type: {err}"
            ) from None
    return data


def version_code(release: str) -> int:
    """``LINUX_VERSION_CODE`` of a kernel release string such as ``"6.18.0-1-amd64"``."""
    parts = []
    for piece in release.split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    while len(parts) < 3:
        parts.append(0)
    major, minor, patch = parts
    return (major << 16) | (minor << 8) | min(patch, 255)
