"""What the loader says when the kernel refuses a map or a program without a verifier log."""

from __future__ import annotations

import errno

import pytest

from bpfnb.elf.refusals import PAGE_SIZE, map_refused, program_refused
from bpfnb.elf.sections import classify
from bpfnb.elf.spec import MapSpec, ProgramSpec
from bpfnb.errors import KernelFeatureError, LoadError, MapError, PrivilegeError
from bpfnb.sys.constants import MapType


def refused(map_type: int, max_entries: int, code: int = errno.EINVAL, key: int = 4) -> str:
    m = MapSpec("events", map_type, key, 8, max_entries)
    error = map_refused(m, max_entries, OSError(code, "refused"))
    assert isinstance(error, MapError) and not isinstance(error, OSError)
    assert error.errno == code
    return str(error)


@pytest.mark.parametrize(
    "map_type, max_entries, code, key, expected",
    [
        (MapType.HASH, 0, errno.EINVAL, 4,
         "map 'events': max_entries 0 is invalid for a hash map; "
         "set spec.maps['events'].max_entries before load"),
        (MapType.LRU_PERCPU_HASH, 0, errno.EINVAL, 4, "invalid for a lru percpu hash map"),
        (MapType.RINGBUF, 4096 + 1, errno.EINVAL, 0,
         f"a power of 2 and a multiple of the page size, {PAGE_SIZE}"),
        (MapType.HASH, 1 << 30, errno.ENOMEM, 4,
         "cannot allocate 1073741824 entries of 4+8 bytes (Cannot allocate memory); "
         "set spec.maps['events'].max_entries before load (smaller)"),
        (MapType.ARRAY, 4, errno.EINVAL, 8, "an array's key must be 4 bytes, not 8"),
        (MapType.HASH, 4, errno.EINVAL, 4,
         "the kernel refuses a hash map with key size 4, value size 8, max_entries 4"),
    ],
)  # fmt: skip
def test_map_refusals_say_what_to_change(map_type, max_entries, code, key, expected):
    assert expected in refused(map_type, max_entries, code, key)


def test_a_missing_capability_stays_a_privilege_error():
    err = PrivilegeError("CAP_BPF", "creating map 'x'")
    assert map_refused(MapSpec("x", MapType.HASH, 4, 4, 1), 1, err) is err


def program(section: str) -> ProgramSpec:
    kind = classify(section)
    return ProgramSpec(
        "p", section, kind.prog_type, kind.expected_attach_type, kind.attach_kind,
        kind.attach_target, b"", prog_flags=kind.prog_flags, attach_btf=kind.attach_btf,
    )  # fmt: skip


def test_tracing_programs_refused_with_eperm_need_trampolines():
    error = program_refused(program("fentry/do_unlinkat"), OSError(errno.EPERM, "x"))
    assert isinstance(error, KernelFeatureError)
    assert str(error).startswith("fentry do_unlinkat: this kernel refuses tracing programs")
    # iter programs need no trampoline: EPERM means something else there.
    assert isinstance(program_refused(program("iter/task"), OSError(errno.EPERM, "x")), LoadError)


def test_einval_without_a_log_names_what_the_kernel_does_not_take():
    error = program_refused(program("uprobe.s/bin:f"), OSError(errno.EINVAL, "x"))
    assert isinstance(error, KernelFeatureError)
    assert str(error) == (
        "section 'uprobe.s/bin:f': this kernel refuses sleepable kprobe programs "
        "(EINVAL, and the verifier gives no reason)"
    )
    error = program_refused(program("netkit/peer"), OSError(errno.EINVAL, "x"))
    assert "sched_cls programs with expected attach type netkit_peer" in str(error)


def test_other_refusals_are_load_errors_that_are_also_oserrors():
    error = program_refused(program("socket"), OSError(errno.E2BIG, "x"))
    assert isinstance(error, LoadError) and isinstance(error, OSError)
    assert error.errno == errno.E2BIG and error.program == "p"
    assert str(error) == (
        "program 'p': the kernel refused the socket_filter program (Argument list too long, E2BIG)"
    )
