"""What really works here: a tiny load of each program type, and a real attach of each kind.

Nothing is inferred from version numbers: each probe tries the feature and reports the errno.
"""

from __future__ import annotations

import ctypes as ct
import errno
import functools
import os
import socket
import struct
from collections.abc import Callable

from elftools.elf.elffile import ELFFile

from bpfnb import link
from bpfnb.doctor.report import MISSING, OK, UNAVAILABLE, Check
from bpfnb.elf import btf
from bpfnb.errors import ElfError, KernelFeatureError
from bpfnb.sys import bpf, features
from bpfnb.sys.constants import AttachType, MapType, ProgType
from bpfnb.sys.fd import FD

__all__ = ["attach_checks", "map_checks", "program_type_checks"]

# r0 = 0; exit
RETURN_ZERO = struct.pack("<BBhi", 0xB7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)
FENTRY_TARGET = "do_sys_openat2"

PROGRAM_TYPES: list[tuple[str, ProgType, int]] = [
    ("socket_filter", ProgType.SOCKET_FILTER, 0),
    ("kprobe", ProgType.KPROBE, 0),
    ("tracepoint", ProgType.TRACEPOINT, 0),
    ("raw_tracepoint", ProgType.RAW_TRACEPOINT, 0),
    ("perf_event", ProgType.PERF_EVENT, 0),
    ("cgroup_skb", ProgType.CGROUP_SKB, AttachType.CGROUP_INET_INGRESS),
    ("xdp", ProgType.XDP, 0),
    ("sched_cls", ProgType.SCHED_CLS, 0),
    ("tracing (fentry)", ProgType.TRACING, AttachType.TRACE_FENTRY),
]


def _why(err: OSError) -> str:
    return f"{errno.errorcode.get(err.errno or 0, err.errno)}: {err.strerror}"


@functools.cache
def vmlinux_function_btf_id(name: str) -> int:
    """The BTF id of kernel function ``name`` (0 when unknown)."""
    try:
        return int(btf.vmlinux().find_id(name, "FUNC"))
    except (OSError, ElfError):
        return 0


def _load(prog_type: int, attach_type: int = 0, attach_btf_id: int = 0) -> FD:
    return bpf.prog_load(
        prog_type,
        RETURN_ZERO,
        name="bpfnb_doctor",
        expected_attach_type=attach_type,
        attach_btf_id=attach_btf_id,
    )


def _tracing_refused(err: OSError) -> str:
    if err.errno == errno.EPERM:
        return features.TRACING_REFUSED
    return f"loading a tracing program failed: {os.strerror(err.errno or 0)}"


def program_type_checks() -> list[Check]:
    checks = []
    fentry_id = vmlinux_function_btf_id(FENTRY_TARGET)
    for label, prog_type, attach_type in PROGRAM_TYPES:
        btf_id = fentry_id if prog_type == ProgType.TRACING else 0
        try:
            _load(prog_type, attach_type, btf_id).close()
        except OSError as err:
            why = _tracing_refused(err) if prog_type == ProgType.TRACING else _why(err)
            checks.append(Check("program types", label, UNAVAILABLE, why))
        except Exception as err:  # VerifierError, PrivilegeError
            checks.append(Check("program types", label, UNAVAILABLE, str(err)))
        else:
            checks.append(Check("program types", label, OK, "a minimal program loaded"))
    return checks


def map_checks() -> list[Check]:
    checks = []
    for label, map_type, key, value, entries in (
        ("ringbuf", MapType.RINGBUF, 0, 0, 4096),
        ("perf_event_array", MapType.PERF_EVENT_ARRAY, 4, 4, 1),
        ("stack_trace", MapType.STACK_TRACE, 4, 8 * 127, 16),
    ):
        try:
            bpf.map_create(map_type, key, value, entries, name="bpfnb_doctor").close()
        except OSError as err:
            checks.append(Check("map types", label, UNAVAILABLE, _why(err)))
        else:
            checks.append(Check("map types", label, OK, "created"))
    checks.append(_batch_ops())
    return checks


def _batch_ops() -> Check:
    with bpf.map_create(MapType.HASH, 4, 8, 8, name="bpfnb_doctor") as fd:
        keys = (ct.c_uint32 * 8)()
        values = (ct.c_uint64 * 8)()
        batch = ct.c_uint32()
        try:
            bpf.map_lookup_batch(fd.fileno(), None, batch, keys, values, 8)
        except OSError as err:
            return Check("map types", "batch operations", UNAVAILABLE, _why(err))
    return Check("map types", "batch operations", OK, "BPF_MAP_LOOKUP_BATCH works")


# -- attach points -------------------------------------------------------------------------------
# Each trial attaches a minimal program through bpfnb.link, exactly as a user's program would.


def _attach_tracepoint() -> str:
    with _load(ProgType.TRACEPOINT) as prog:
        link.attach_tracepoint(prog.fileno(), "syscalls:sys_enter_getppid").close()
    return "attached to syscalls:sys_enter_getppid"


def _attach_raw_tracepoint() -> str:
    with _load(ProgType.RAW_TRACEPOINT) as prog:
        link.attach_raw_tracepoint(prog.fileno(), "sys_enter").close()
    return "attached to sys_enter"


def _entry_file_offset(path: str) -> int:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        entry = elf.header.e_entry
        for segment in elf.iter_segments():
            start = segment["p_vaddr"]
            if segment["p_type"] == "PT_LOAD" and start <= entry < start + segment["p_filesz"]:
                return int(entry - start + segment["p_offset"])
    raise ValueError(f"{path}: entry point is not in a loadable segment")


def _attach_uprobe() -> str:
    target = os.path.realpath("/bin/true")
    with _load(ProgType.KPROBE) as prog:
        link.attach_uprobe(prog.fileno(), target, _entry_file_offset(target)).close()
    return f"attached to {target} at its entry point"


def _attach_kprobe() -> str:
    with _load(ProgType.KPROBE) as prog:
        link.attach_kprobe(prog.fileno(), "do_sys_openat2").close()
    return "attached to do_sys_openat2"


def _attach_fentry() -> str:
    btf_id = vmlinux_function_btf_id(FENTRY_TARGET)
    try:
        prog = _load(ProgType.TRACING, AttachType.TRACE_FENTRY, btf_id)
    except OSError as err:
        raise _Unavailable(_tracing_refused(err)) from err
    with prog:
        # The kernel takes no tracepoint name for a tracing program (a pointer to "" fails
        # with EINVAL), only NULL, which bpfnb.link passes.
        link.attach_fentry(prog.fileno(), FENTRY_TARGET).close()
    return f"attached to {FENTRY_TARGET}"


def _attach_perf_event() -> str:
    with _load(ProgType.PERF_EVENT) as prog:
        link.attach_perf_event(prog.fileno(), "cpu-clock", sample_period=1_000_000).close()
    return "attached to a cpu-clock sampling event on every CPU"


def _attach_socket_filter() -> str:
    with (
        _load(ProgType.SOCKET_FILTER) as prog,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s,
    ):
        link.attach_socket_filter(prog.fileno(), s).close()
    return "attached to a UDP socket"


class _Unavailable(Exception):
    pass


ATTACH_PROBES: list[tuple[str, Callable[[], str]]] = [
    ("tracepoint", _attach_tracepoint),
    ("raw_tracepoint", _attach_raw_tracepoint),
    ("uprobe", _attach_uprobe),
    ("kprobe", _attach_kprobe),
    ("fentry", _attach_fentry),
    ("perf_event", _attach_perf_event),
    ("socket filter", _attach_socket_filter),
]


def attach_checks() -> list[Check]:
    checks = []
    for label, probe in ATTACH_PROBES:
        try:
            why = probe()
        except _Unavailable as err:
            checks.append(Check("attach points", label, UNAVAILABLE, str(err)))
        except KernelFeatureError as err:
            checks.append(Check("attach points", label, UNAVAILABLE, err.reason))
        except FileNotFoundError as err:
            checks.append(Check("attach points", label, MISSING, str(err), "doctor --fix"))
        except OSError as err:
            checks.append(Check("attach points", label, UNAVAILABLE, _why(err)))
        except Exception as err:
            checks.append(Check("attach points", label, UNAVAILABLE, str(err)))
        else:
            checks.append(Check("attach points", label, OK, why))
    return checks
