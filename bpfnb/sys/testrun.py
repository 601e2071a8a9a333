"""BPF_PROG_TEST_RUN: run a loaded program once on given input, without attaching it."""

from __future__ import annotations

import ctypes as ct
from dataclasses import dataclass

from bpfnb.sys.syscall import bpf

__all__ = ["TestRun", "prog_test_run"]

_CMD_PROG_TEST_RUN = 10

u32 = ct.c_uint32
u64 = ct.c_uint64


class _TestRunAttr(ct.Structure):
    _fields_ = [
        ("prog_fd", u32),
        ("retval", u32),
        ("data_size_in", u32),
        ("data_size_out", u32),
        ("data_in", u64),
        ("data_out", u64),
        ("repeat", u32),
        ("duration", u32),
        ("ctx_size_in", u32),
        ("ctx_size_out", u32),
        ("ctx_in", u64),
        ("ctx_out", u64),
        ("flags", u32),
        ("cpu", u32),
        ("batch_size", u32),
    ]


@dataclass(frozen=True)
class TestRun:
    """What one test run returned: the program's return value and the (possibly changed) data."""

    __test__ = False  # not a pytest test class

    retval: int
    data: bytes
    duration_ns: int


def prog_test_run(prog_fd: int, data: bytes, repeat: int = 1) -> TestRun:
    """Run program ``prog_fd`` on the packet ``data`` (socket filters, tc, XDP, ...)."""
    data_in = ct.create_string_buffer(data, len(data))
    out_size = max(len(data) + 256, 64)
    data_out = ct.create_string_buffer(out_size)
    attr = _TestRunAttr(
        prog_fd=prog_fd,
        data_size_in=len(data),
        data_size_out=out_size,
        data_in=ct.addressof(data_in),
        data_out=ct.addressof(data_out),
        repeat=repeat,
    )
    bpf(_CMD_PROG_TEST_RUN, attr)
    return TestRun(int(attr.retval), data_out.raw[: attr.data_size_out], int(attr.duration))
