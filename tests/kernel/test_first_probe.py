"""End to end through bcc from inside the venv: an exact count of getppid calls from this pid."""

from __future__ import annotations

import os

import pytest

COUNTER = """
BPF_ARRAY(calls, u64, 1);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if (bpf_get_current_pid_tgid() >> 32 != PID)
        return 0;
    int zero = 0;
    u64 *count = calls.lookup(&zero);
    if (count)
        __sync_fetch_and_add(count, 1);
    return 0;
}
"""


@pytest.mark.parametrize("calls", [1, 137])
def test_bcc_counts_exact_getppid_calls(bcc_ok: None, calls: int) -> None:
    from bpfnb.bcc import import_bcc

    bcc = import_bcc()
    program = bcc.BPF(text=COUNTER, cflags=[f"-DPID={os.getpid()}"])
    try:
        for _ in range(calls):
            os.getppid()
        counted = program["calls"][0].value
    finally:
        program.cleanup()
    assert counted == calls
