"""What to tell the user when the kernel refuses a map or a program without a verifier log: which
one, why as far as the definition shows, and what to set before loading again."""

from __future__ import annotations

import errno
import os
import re

from bpfnb.elf.spec import MapSpec, ProgramSpec
from bpfnb.errors import (
    KernelFeatureError,
    LoadError,
    MapError,
    PrivilegeError,
    VerifierError,
)
from bpfnb.sys import features
from bpfnb.sys.constants import AttachType, MapType, ProgFlags, ProgType, lower_name

__all__ = ["map_refused", "program_refused", "verifier_refused"]

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _describe(m: MapSpec) -> str:
    return m.type_name.replace("_", " ") + (" map" if "map" not in m.type_name else "")


def _map_reason(m: MapSpec, max_entries: int) -> str:
    # Why this definition is refused, when the definition alone shows it.
    if m.type == MapType.RINGBUF:
        if max_entries < PAGE_SIZE or max_entries & (max_entries - 1):
            return (
                f"max_entries {max_entries} is invalid for a ring buffer (it must be a power of "
                f"2 and a multiple of the page size, {PAGE_SIZE})"
            )
    elif max_entries == 0:
        return f"max_entries 0 is invalid for a {_describe(m)}"
    if m.type in (MapType.ARRAY, MapType.PERCPU_ARRAY, MapType.PROG_ARRAY) and m.key_size != 4:
        return f"an array's key must be 4 bytes, not {m.key_size}"
    return ""


def map_refused(m: MapSpec, max_entries: int, err: OSError) -> BaseException:
    """The error for a map the kernel refused to create (``err``)."""
    if isinstance(err, PrivilegeError):
        return err
    code = err.errno or 0
    reason = _map_reason(m, max_entries)
    fix = f"set spec.maps[{m.name!r}].max_entries before load"
    if reason and "max_entries" in reason:
        message = f"map {m.name!r}: {reason}; {fix}"
    elif reason:
        message = f"map {m.name!r}: {reason}"
    elif code in (errno.ENOMEM, errno.E2BIG):
        message = (
            f"map {m.name!r}: the kernel cannot allocate {max_entries} entries of "
            f"{m.key_size}+{m.value_size} bytes ({os.strerror(code)}); {fix} (smaller)"
        )
    else:
        message = (
            f"map {m.name!r}: the kernel refuses a {_describe(m)} with key size {m.key_size}, "
            f"value size {m.value_size}, max_entries {max_entries} and flags {m.flags:#x} "
            f"({os.strerror(code)})"
        )
    error = MapError(message)
    error.errno = code
    return error


def program_refused(prog: ProgramSpec, err: OSError) -> BaseException:
    """The error for a program the kernel refused to load without a verifier log."""
    if isinstance(err, PrivilegeError):
        return err
    code = err.errno or 0
    # tp_btf and iter programs need no trampoline; the other tracing kinds do.
    trampoline = prog.type in (ProgType.TRACING, ProgType.LSM, ProgType.EXT) and (
        prog.expected_attach_type not in (AttachType.TRACE_RAW_TP, AttachType.TRACE_ITER)
    )
    if trampoline and code == errno.EPERM:
        return features.tracing_load_error(err, f"{prog.attach_kind} {prog.attach_target}")
    type_name = lower_name(ProgType, prog.type)
    try:
        attach = AttachType(prog.expected_attach_type).name.lower()
    except ValueError:
        attach = str(prog.expected_attach_type)
    if code == errno.EINVAL:
        what = f"{type_name} programs"
        if prog.expected_attach_type:
            what += f" with expected attach type {attach}"
        if prog.prog_flags & ProgFlags.SLEEPABLE:
            what = "sleepable " + what
        if prog.prog_flags & ProgFlags.XDP_HAS_FRAGS:
            what += " using XDP frags"
        return KernelFeatureError(
            f"section {prog.section!r}",
            f"this kernel refuses {what} (EINVAL, and the verifier gives no reason)",
        )
    return LoadError(prog.name, code, f"the kernel refused the {type_name} program")


_NO_ADDRESS = re.compile(r"failed to find the address for kernel symbol '([^']+)'")


def verifier_refused(prog: ProgramSpec, err: VerifierError) -> BaseException | None:
    """The verifier's rejections that say the kernel lacks something, not that the program is
    wrong; None for the others."""
    if "processed 0 insns" in err.log and err.summary == os.strerror(err.errno):
        # Refused before the first instruction, without a reason: as without a log.
        return program_refused(prog, OSError(err.errno, err.summary))
    missing = _NO_ADDRESS.search(err.log)
    if missing:
        # check_pseudo_btf_id() looks a __ksym variable's address up in kallsyms, which lists
        # variables only with CONFIG_KALLSYMS_ALL.
        return KernelFeatureError(
            f"__ksym {missing.group(1)} (program {prog.name!r})",
            "the kernel's BTF describes this variable, but the kernel cannot find its address: "
            "its kallsyms lists no variables (it was built without CONFIG_KALLSYMS_ALL)",
        )
    return None
