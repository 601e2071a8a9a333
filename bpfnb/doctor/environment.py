"""Environment checks: kernel, bpf(), capabilities, tracefs, BTF, headers, bcc."""

from __future__ import annotations

import ctypes.util
import os

from bpfnb import bcc
from bpfnb.doctor import headers
from bpfnb.doctor.report import MISSING, OK, UNAVAILABLE, Check
from bpfnb.errors import BccMissingError
from bpfnb.sys import bpf, caps, mounts, tracefs
from bpfnb.sys.constants import MapType
from bpfnb.sys.kernel_btf import VMLINUX_BTF

__all__ = ["environment_checks"]

GROUP = "environment"
TRACEPOINT_PROGRAM = "TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }"


def _check(name: str, status: str, why: str, fix: str = "") -> Check:
    return Check(GROUP, name, status, why, fix)


def kernel_release() -> Check:
    uname = os.uname()
    return _check("kernel", OK, f"{uname.sysname} {uname.release} ({uname.machine})")


def bpf_syscall() -> Check:
    try:
        bpf.map_create(MapType.ARRAY, 4, 4, 1, name="doctor").close()
    except PermissionError as err:
        return _check("bpf() syscall", MISSING, str(err), "run as root")
    except OSError as err:
        return _check(
            "bpf() syscall",
            UNAVAILABLE,
            f"creating a map failed: {err.strerror}",
            "the kernel needs CONFIG_BPF_SYSCALL=y",
        )
    return _check("bpf() syscall", OK, "created and closed an array map")


def capabilities() -> Check:
    held = [name for cap, name in caps.NAMES.items() if caps.has(cap)]
    wanted = ("CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN")
    lacking = [name for name in wanted if name not in held]
    if caps.can_bpf() and "CAP_PERFMON" not in lacking or caps.has(caps.CAP_SYS_ADMIN):
        return _check("capabilities", OK, "effective: " + ", ".join(n for n in wanted if n in held))
    return _check(
        "capabilities",
        MISSING,
        "lacking: " + ", ".join(lacking),
        "run as root, or grant CAP_BPF and CAP_PERFMON to the interpreter",
    )


def tracefs_mounted() -> Check:
    root = tracefs.mount_point()
    if root:
        return _check("tracefs", OK, f"mounted at {root}")
    return _check(
        "tracefs",
        MISSING,
        f"not mounted; tracepoints and uprobes need it at {mounts.TRACEFS}",
        "python -m bpfnb doctor --fix (mounts it)",
    )


def btf() -> Check:
    path = VMLINUX_BTF
    if os.path.exists(path):
        return _check("BTF", OK, f"{path} ({os.path.getsize(path) // 1024} KiB)")
    return _check("BTF", MISSING, f"{path} is absent", "the kernel needs CONFIG_DEBUG_INFO_BTF=y")


def kernel_headers() -> Check:
    release = os.uname().release
    build = headers.build_dir(release)
    if not headers.usable(build):
        installed = [tree.release for tree in headers.installed_header_trees()]
        why = f"{build} is missing"
        if installed:
            why += f"; installed headers: {', '.join(installed)}"
        return _check(
            "kernel headers",
            MISSING,
            why,
            "python -m bpfnb doctor --fix (links the nearest installed headers)",
        )
    target = os.path.realpath(build)
    if release in target:
        return _check("kernel headers", OK, f"{build} -> {target}")
    return _check(
        "kernel headers",
        OK,
        f"{build} -> {target} (headers of another release; struct layouts may differ, "
        "tracepoint args are safe)",
    )


def bcc_bindings() -> list[Check]:
    try:
        bindings = bcc.import_bcc()
    except BccMissingError as err:
        return [
            _check(
                "bcc bindings", MISSING, str(err).split(". ")[0], "apt-get install python3-bpfcc"
            ),
            _check("libbcc", MISSING, "not checked: the bindings are missing", ""),
        ]
    where = os.path.dirname(bindings.__file__ or "")
    libname = getattr(bindings.lib, "_name", None) or ctypes.util.find_library("bcc") or "libbcc"
    return [
        _check("bcc bindings", OK, f"{bindings.__version__} from {where}"),
        _check("libbcc", OK, f"{libname} loaded"),
    ]


def bcc_compile() -> Check:
    try:
        with bcc.compile(TRACEPOINT_PROGRAM, name="doctor"):
            pass
    except BccMissingError as err:
        return _check("bcc compile", UNAVAILABLE, f"no bcc: {err}", "apt-get install python3-bpfcc")
    except Exception as err:
        detail = getattr(err, "output", "").strip().splitlines()
        why = detail[0] if detail else str(err)
        return _check("bcc compile", UNAVAILABLE, why[:200], "python -m bpfnb doctor --fix")
    return _check("bcc compile", OK, "compiled, loaded and attached a syscalls tracepoint program")


def environment_checks() -> list[Check]:
    checks = [
        kernel_release(),
        bpf_syscall(),
        capabilities(),
        tracefs_mounted(),
        btf(),
        kernel_headers(),
    ]
    checks += bcc_bindings()
    checks.append(bcc_compile())
    return checks
