"""``__kconfig`` externs: values from the running kernel's build configuration, and the
``LINUX_*`` values libbpf computes itself.

libbpf-style code declares ``extern u32 LINUX_KERNEL_VERSION __kconfig;`` or
``extern bool CONFIG_BPF_JIT __kconfig __weak;``; clang leaves them undefined, in a ``.kconfig``
BTF DATASEC. bpfnb lays them out in a read-only ``.kconfig`` array map as libbpf does and fills
it at load: ``CONFIG_*`` from ``/proc/config.gz`` (or ``/boot/config-RELEASE``), ``LINUX_*`` by
asking the kernel (:func:`linux_value`).
"""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Callable, Mapping

from bpfnb.elf import btf as btf_module
from bpfnb.elf.btf import INT_BOOL, INT_CHAR, Btf
from bpfnb.elf.variables import Variable, encode_value
from bpfnb.errors import KernelFeatureError
from bpfnb.sys import features, kallsyms

__all__ = [
    "KCONFIG",
    "LINUX_VALUES",
    "kconfig_data",
    "kernel_config",
    "layout",
    "linux_value",
    "running_version",
    "syscall_wrapper",
    "version_code",
]

KCONFIG = ".kconfig"
_TRISTATE = {"n": 0, "y": 1, "m": 2}


def _align(btf: Btf, type_id: int) -> int:
    t = btf.skip_modifiers(type_id)
    if t.kind == "ARRAY":
        return _align(btf, t.type_id)
    return max(1, min(btf.size_of(t.id), 8))


def layout(btf: Btf) -> list[tuple[str, int, int, int]]:
    """(name, offset, size, type id) of each ``.kconfig`` extern, laid out as libbpf lays them
    out: by alignment (largest first), then size (smallest first), then name."""
    datasec = btf.find(KCONFIG, "DATASEC")
    if datasec is None:
        return []
    externs = []
    for entry in datasec.members:
        var = btf.type(entry.type_id)
        if var.kind == "VAR":
            externs.append((var.name, btf.size_of(var.type_id), _align(btf, var.type_id), var.id))
    externs.sort(key=lambda e: (-e[2], e[1], e[0].encode()))
    out = []
    end = 0
    for name, size, align, var_id in externs:
        offset = (end + align - 1) // align * align
        out.append((name, offset, size, btf.type(var_id).type_id))
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


def syscall_wrapper(vmlinux: Btf | None = None) -> bool:
    """Whether the kernel enters syscalls through per-architecture wrappers (``__x64_sys_bpf``).

    libbpf probes this by opening a kprobe on ``__<arch>_sys_bpf``, so it answers "no" wherever
    kprobes are missing. bpfnb asks whether that function exists, in the kernel's BTF (when
    given) or in ``/proc/kallsyms``: the same answer wherever kprobes work, and the true one
    where they do not.
    """
    prefix = features.syscall_wrapper_prefix()
    if prefix is None:
        return False
    name = prefix + "bpf"
    if vmlinux is not None and vmlinux.find_id(name, "FUNC"):
        return True
    try:
        return name in kallsyms.lookup([name])
    except OSError:
        return False


# The virtual externs libbpf fills itself; any other LINUX_* extern must be __weak, and is 0.
LINUX_VALUES: dict[str, Callable[[], int]] = {
    "LINUX_KERNEL_VERSION": lambda: running_version(),
    "LINUX_HAS_BPF_COOKIE": lambda: int(features.bpf_cookie()),
    "LINUX_HAS_SYSCALL_WRAPPER": lambda: int(syscall_wrapper(_vmlinux())),
}


def _vmlinux() -> Btf | None:
    # The kernel's BTF when it has one: a lookup there is quicker than reading kallsyms.
    try:
        return btf_module.vmlinux()
    except OSError:
        return None


def linux_value(name: str, weak: bool) -> int:
    """The value of the virtual extern ``name`` (``LINUX_*``)."""
    compute = LINUX_VALUES.get(name)
    if compute is not None:
        return compute()
    if weak:
        return 0
    known = ", ".join(LINUX_VALUES)
    raise KernelFeatureError(
        name, f"is not a value libbpf or bpfnb knows ({known}); declare it __weak to get 0"
    )


def kconfig_data(
    variables: list[Variable],
    weak: dict[str, bool],
    btf: Btf,
    size: int,
    config: dict[str, str] | None = None,
    release: str | None = None,
    linux: Mapping[str, int] | None = None,
) -> bytes:
    """The ``.kconfig`` map's value: each extern's value from the kernel, zero for a missing
    ``__weak`` one. ``config`` and ``release`` stand in for the running kernel's configuration
    and release, ``linux`` for its ``LINUX_*`` values."""
    data = bytes(size)
    for var in variables:
        if var.name.startswith("LINUX_"):
            if linux is not None and var.name in linux:
                value: object = linux[var.name]
            elif var.name == "LINUX_KERNEL_VERSION" and release is not None:
                value = version_code(release)
            else:
                value = linux_value(var.name, weak.get(var.name, False))
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


def running_version() -> int:
    """``LINUX_VERSION_CODE`` of the running kernel, as libbpf finds it: Ubuntu's and Debian's
    kernels give their upstream version in ``/proc/version_signature`` and ``uname -v``, as
    their release string may not."""
    try:
        with open("/proc/version_signature") as f:
            return version_code(f.read().split()[-1])  # "Ubuntu 5.15.0-91.101-generic 5.15.131"
    except (OSError, IndexError):
        pass
    uname = os.uname()
    words = uname.version.split()
    if "Debian" in words[:-1]:
        return version_code(words[words.index("Debian") + 1])  # "... Debian 6.1.76-1 ..."
    return version_code(uname.release)
