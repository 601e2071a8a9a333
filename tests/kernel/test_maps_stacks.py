"""Stack-trace maps joined with their counts: a known user function, and a syscall's kernel path."""

from __future__ import annotations

import ctypes as ct
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bpfnb.bcc import from_bcc_table
from bpfnb.maps import StackTraceMap
from tests.conftest import need

LIBRARY = """
int bpfnb_known_function(int x) { return x + 1; }
"""

PROGRAM = r"""
struct key_t { u32 pid; int user_stack_id; int kernel_stack_id; };
BPF_STACK_TRACE(stacks, 1024);
BPF_HASH(counts, struct key_t, u64);

int on_call(struct pt_regs *ctx) {
    if (bpf_get_current_pid_tgid() >> 32 != PID)
        return 0;
    struct key_t key = {.pid = PID};
    key.user_stack_id = stacks.get_stackid(ctx, BPF_F_USER_STACK);
    key.kernel_stack_id = stacks.get_stackid(ctx, 0);
    counts.increment(key);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if (bpf_get_current_pid_tgid() >> 32 != PID)
        return 0;
    struct key_t key = {.pid = PID, .user_stack_id = -1};
    key.kernel_stack_id = stacks.get_stackid(args, 0);
    counts.increment(key);
    return 0;
}
"""


@pytest.fixture
def library(tmp_path: Path) -> Path:
    need(shutil.which("clang") is not None, "clang is not installed")
    source = tmp_path / "known.c"
    source.write_text(LIBRARY)
    out = tmp_path / "libknown.so"
    subprocess.run(
        ["clang", "-shared", "-fPIC", "-O0", "-g", str(source), "-o", str(out)], check=True
    )
    return out


def test_user_stack_names_a_known_function_and_kernel_stack_a_syscall(
    bcc_ok: None, library: Path
) -> None:
    from bpfnb.bcc import import_bcc

    bcc = import_bcc()
    known = ct.CDLL(str(library))
    program = bcc.BPF(text=PROGRAM, cflags=[f"-DPID={os.getpid()}"])
    try:
        program.attach_uprobe(name=str(library), sym="bpfnb_known_function", fn_name="on_call")
        for i in range(17):
            assert known.bpfnb_known_function(i) == i + 1
        for _ in range(5):
            os.getppid()
        stacks = from_bcc_table(program[b"stacks"])
        assert isinstance(stacks, StackTraceMap)
        frame = stacks.stacks(from_bcc_table(program[b"counts"]))
    finally:
        program.cleanup()
    assert {"pid", "user_stack_id", "kernel_stack_id", "count", "stack"} <= set(frame.columns)
    user = frame[frame["user_stack_id"] >= 0]
    # Every call stopped at the probe on the function's first instruction: the innermost
    # frame (the last, root first) is that function, 17 times in all.
    assert user["stack"].map(lambda s: s[-1] == "bpfnb_known_function").all()
    assert user["count"].sum() == 17
    kernel = frame[frame["user_stack_id"] < 0]
    assert kernel["count"].sum() == 5
    assert kernel["stack"].map(lambda s: any("syscall" in f.lower() for f in s)).all()


SCALAR = r"""
BPF_STACK_TRACE(stacks, 256);
BPF_HASH(by_stack, int, u64);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if (bpf_get_current_pid_tgid() >> 32 != PID)
        return 0;
    int id = stacks.get_stackid(args, 0);
    by_stack.increment(id);
    return 0;
}
"""


def test_scalar_stack_id_counts_make_a_flame_graph(bcc_ok: None) -> None:
    from bpfnb import plots
    from bpfnb.bcc import import_bcc

    program = import_bcc().BPF(text=SCALAR, cflags=[f"-DPID={os.getpid()}"])
    try:
        for _ in range(23):
            os.getppid()
        frame = from_bcc_table(program[b"stacks"]).stacks(from_bcc_table(program[b"by_stack"]))
    finally:
        program.cleanup()
    assert list(frame.columns) == ["stack_id", "count", "stack"]
    assert frame["count"].sum() == 23
    assert (frame["stack_id"] >= 0).all()
    assert frame["stack"].map(lambda s: any("syscall" in f.lower() for f in s)).all()
    fig = plots.flamegraph(frame)
    # The bottom row covers every sample: its boxes' widths add up to the whole.
    bottom = [p.get_width() for p in fig.axes[0].patches if p.get_y() == 0]
    assert abs(sum(bottom) - 1.0) < 1e-9
