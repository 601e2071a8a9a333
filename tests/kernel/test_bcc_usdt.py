"""USDT probes in ``%%bpf`` cells: bcc's argument readers (``bpf_usdt_readarg``) compiled with
the cell, the functions attached by bpfnb at every site, counted exactly on workloads built here
and on Debian's python3.11."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import bpfnb
from bpfnb.errors import AttachError, BpfError, NoSuchProgramError
from tests.conftest import need
from tests.usdt_workload import build_workload, counted_ticks, expected_ticks, start_waiting

PYTHON = Path("/usr/bin/python3.11")

# Every value of the tick probe's argument (i at one site, -i at the other), and the five
# arguments of the args probe, each read into a variable of its own width.
TICKS_AND_ARGS = """
BPF_HASH(ticks, s64, u64, 4096);
BPF_ARRAY(failed, u64, 1);
BPF_ARRAY(args, s64, 5);

int on_tick(struct pt_regs *ctx) {
    s64 value = 0;
    if (bpf_usdt_readarg(1, ctx, &value) != 0) {
        failed.increment(0);
        return 0;
    }
    ticks.increment(value);
    return 0;
}

int on_args(struct pt_regs *ctx) {
    s32 a = 0, e = 0;
    u8 b = 0;
    s64 c = 0;
    s16 d = 0;
    int bad = bpf_usdt_readarg(1, ctx, &a) | bpf_usdt_readarg(2, ctx, &b) |
              bpf_usdt_readarg(3, ctx, &c) | bpf_usdt_readarg(4, ctx, &d) |
              bpf_usdt_readarg(5, ctx, &e);
    if (bad) {
        failed.increment(0);
        return 0;
    }
    s64 values[5] = {a, b, c, d, e};
    for (int i = 0; i < 5; i++) {
        int key = i;
        args.update(&key, &values[i]);
    }
    return 0;
}
"""

GATED = """
BPF_HASH(seen, s64, u64, 4096);
int on_gated(struct pt_regs *ctx) {
    s64 i = -1;
    bpf_usdt_readarg(1, ctx, &i);
    seen.increment(i);
    return 0;
}
"""

# Python 3.11 fires function__entry only while its line probe is enabled too (CPython issue
# gh-98894): on_line keeps that probe's semaphore set.
PYTHON_CALLS = """
struct call_t {
    char file[16];
    char name[32];
    s32 line;
};
BPF_HASH(calls, struct call_t, u64, 1024);
BPF_ARRAY(lines, u64, 1);

int on_entry(struct pt_regs *ctx) {
    u64 file = 0, name = 0;
    struct call_t call = {};
    bpf_usdt_readarg(1, ctx, &file);
    bpf_usdt_readarg(2, ctx, &name);
    bpf_usdt_readarg(3, ctx, &call.line);
    bpf_probe_read_user_str(&call.file, sizeof(call.file), (void *)file);
    bpf_probe_read_user_str(&call.name, sizeof(call.name), (void *)name);
    calls.increment(call);
    return 0;
}

int on_line(struct pt_regs *ctx) {
    lines.increment(0);
    return 0;
}
"""

# Line 3 defines the function; it is called N times from C (map) and M times from Python.
PYTHON_WORKLOAD = """import sys

def bpfnb_target(i):
    return i

sys.stdin.readline()
for _ in map(bpfnb_target, range(int(sys.argv[1]))):
    pass
for i in range(int(sys.argv[2])):
    bpfnb_target(i)
"""


@pytest.fixture(scope="module")
def workload(tmp_path_factory) -> Path:
    return build_workload(tmp_path_factory.mktemp("usdt"), "-O2")


@pytest.fixture
def shell(bcc_ok: None):
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "bpfnb")
    yield ip
    ip.run_line_magic("bpf_close", "--all")


def test_cell_reads_every_argument_at_every_site_of_a_process(shell, workload: Path) -> None:
    args = (-7, 250, 5_000_000_000, -1234)
    proc = start_waiting(workload, 300, *args)
    try:
        obj = shell.run_cell_magic(
            "bpf",
            f"probes --usdt {workload}:bpfnbtest:tick=on_tick"
            f" --usdt {workload}:bpfnbtest:args=on_args --usdt-pid {proc.pid}",
            TICKS_AND_ARGS,
        )
        assert shell.user_ns["probes"] is obj
        assert sorted(obj.programs["on_tick"].attach_points) == sorted(
            f"usdt:bpfnbtest:tick@{workload}:{site:#x} (pid {proc.pid})"
            for site in (
                s.offset for s in bpfnb.usdt.find_sites(str(workload), "bpfnbtest", "tick")
            )
        )
        out, _ = proc.communicate("go\n", timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert obj.maps["failed"][0] == 0
    assert counted_ticks(obj) == expected_ticks(300)
    assert [obj.maps["args"][i] for i in range(5)] == [*args, 42]


@pytest.mark.parametrize("flags", [("-O0",), ("-O2", "-no-pie")])
def test_without_a_pid_any_process_of_the_file_is_read(
    bcc_ok: None, tmp_path: Path, flags: tuple[str, ...]
) -> None:
    # Without a pid bcc tells the two sites apart by the instruction pointer's offset in its
    # page; bpfnb attaches at their file offsets, which agree with it in every process.
    binary = build_workload(tmp_path, *flags)
    spec = f"{binary}:bpfnbtest:tick=on_tick"
    with bpfnb.compile(TICKS_AND_ARGS, usdt=[spec], name="ticks") as obj:
        assert len(obj.programs["on_tick"].links) == 2
        for _ in range(2):
            subprocess.run([str(binary), "120"], check=True, capture_output=True)
        assert obj.maps["failed"][0] == 0
        assert counted_ticks(obj) == {k: 2 * v for k, v in expected_ticks(120).items()}
        assert "on_args" not in obj.programs  # named for no probe: never loaded


def test_the_semaphore_is_the_kernels_alone(shell, workload: Path) -> None:
    # bcc raises a probe's semaphore in the process while it writes the reader; bpfnb takes
    # that back at once, so while the cell is attached the count is the kernel's 1, not 2.
    proc = start_waiting(workload, 75)
    try:
        obj = shell.run_cell_magic(
            "bpf", f"gated --usdt {workload}:bpfnbtest:gated=on_gated --usdt-pid {proc.pid}", GATED
        )
        out, _ = proc.communicate("go\n", timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.split() == ["75", "1"]  # fired 75 times; the semaphore read 1 at the end
    frame = obj.maps["seen"].to_frame()
    assert dict(zip(frame["key"], frame["value"])) == {i: 1 for i in range(75)}
    shell.run_line_magic("bpf_close", "gated")
    done = subprocess.run([str(workload), "20"], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "0"]


def test_a_semaphore_needs_a_pid(bcc_ok: None, workload: Path) -> None:
    with pytest.raises(AttachError, match=r"bpfnbtest:gated .* has a semaphore.*--usdt-pid"):
        bpfnb.compile(GATED, usdt=[(str(workload), "bpfnbtest:gated", "on_gated")])


def test_python_function_entries_counted_exactly(bcc_ok: None) -> None:
    need(PYTHON.exists(), f"{PYTHON} is not installed")
    from_c, from_python = 400, 150
    argv = [str(PYTHON), "-c", PYTHON_WORKLOAD, str(from_c), str(from_python)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        _wait_until_mapped(proc.pid, str(PYTHON))
        probes = ["python:function__entry=on_entry", "python:line=on_line"]
        with bpfnb.compile(PYTHON_CALLS, usdt=probes, usdt_pid=proc.pid, name="pycalls") as obj:
            assert [link.target for _, link in obj.links] == [
                f"python:{name}@{PYTHON}:{site.offset:#x} (pid {proc.pid})"
                for name in ("function__entry", "line")
                for site in bpfnb.usdt.find_sites(str(PYTHON), "python", name)
            ]
            proc.communicate("go\n", timeout=30)
            calls = obj.maps["calls"].to_frame()
            lines = obj.maps["lines"][0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    target = calls[calls["name"] == "bpfnb_target"]
    assert target[["file", "line", "value"]].values.tolist() == [
        ["<string>", 3, from_c + from_python]
    ]
    assert lines > 3 * (from_c + from_python)  # each call runs lines 4, 7 or 9-10


def test_python_probes_found_in_the_process_without_a_path(bcc_ok: None) -> None:
    need(PYTHON.exists(), f"{PYTHON} is not installed")
    proc = subprocess.Popen(
        [str(PYTHON), "-c", "import sys; sys.stdin.readline()"], stdin=subprocess.PIPE, text=True
    )
    try:
        _wait_until_mapped(proc.pid, str(PYTHON))
        with pytest.raises(AttachError, match=r"no USDT probe python:nope in the files process"):
            bpfnb.compile(PYTHON_CALLS, usdt=["python:nope=on_entry"], usdt_pid=proc.pid)
        with pytest.raises(AttachError, match="name the file that has it"):
            bpfnb.compile(PYTHON_CALLS, usdt=["python:line=on_line"])
    finally:
        proc.communicate("\n", timeout=10)


def test_functions_must_be_the_cells_own_uprobe_functions(bcc_ok: None, workload: Path) -> None:
    with pytest.raises(NoSuchProgramError, match="no function 'on_tik'; did you mean 'on_tick'"):
        bpfnb.compile(TICKS_AND_ARGS, usdt=[f"{workload}:bpfnbtest:tick=on_tik"])
    text = TICKS_AND_ARGS + "TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }\n"
    with pytest.raises(BpfError, match="attaches as tracepoint by its name"):
        bpfnb.compile(
            text, usdt=[f"{workload}:bpfnbtest:tick=tracepoint__syscalls__sys_enter_getppid"]
        )


def test_usage_errors_of_the_options(shell, workload: Path) -> None:
    with pytest.raises(UsageError, match="expected PATH:PROVIDER:NAME=FUNC"):
        shell.run_cell_magic("bpf", f"x --usdt {workload}:bpfnbtest:tick", TICKS_AND_ARGS)
    with pytest.raises(UsageError, match="add --usdt"):
        shell.run_cell_magic("bpf", f"x --usdt-pid {os.getpid()}", TICKS_AND_ARGS)
    with pytest.raises(UsageError, match="for bcc cells"):
        shell.run_cell_magic("bpf", f"x --elf --usdt {workload}:bpfnbtest:tick=f", GATED)
    assert "x" not in shell.user_ns


def _wait_until_mapped(pid: int, path: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/maps") as maps:
            if path in maps.read():
                return
        time.sleep(0.005)
    raise TimeoutError(f"{path} was not mapped in process {pid} within 10 s")
