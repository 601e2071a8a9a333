"""Kernel tests need root, the bpf() syscall, and (for bcc tests) a working bcc compile."""

from __future__ import annotations

import functools
import os

import pytest

from tests.conftest import need


@functools.cache
def _bpf_syscall_works() -> str:
    from bpfnb.sys import bpf
    from bpfnb.sys.constants import MapType

    try:
        bpf.map_create(MapType.ARRAY, 4, 4, 1).close()
    except Exception as err:  # noqa: BLE001 - any failure means "not here"
        return f"the bpf() syscall does not work here: {err}"
    return ""


@functools.cache
def _bcc_works() -> str:
    try:
        from bpfnb.bcc import import_bcc
        from bpfnb.doctor import headers
        from bpfnb.sys import mounts

        mounts.ensure_tracefs()
        headers.link_nearest()
        bcc = import_bcc()
        prog = bcc.BPF(text=b"int f(void *ctx) { return 0; }")
        prog.cleanup()
    except Exception as err:  # noqa: BLE001
        return f"bcc cannot compile here: {err}"
    return ""


@pytest.fixture(autouse=True)
def kernel() -> None:
    """Every kernel test needs root and bpf()."""
    need(os.geteuid() == 0, "kernel tests need root")
    reason = _bpf_syscall_works()
    need(not reason, reason)


@pytest.fixture
def bcc_ok() -> None:
    """Tests that compile through libbcc."""
    reason = _bcc_works()
    need(not reason, reason)
