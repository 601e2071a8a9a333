"""Tracing attach points with workloads the tests control: tracepoints, raw tracepoints,
uprobes (PMU and tracefs), perf events, and the clear refusals for kprobes and fentry here."""

from __future__ import annotations

import ctypes as ct
import os
import subprocess
import time
from pathlib import Path

import pytest

from bpfnb.doctor.trials import vmlinux_function_btf_id
from bpfnb.errors import AttachError, KernelFeatureError
from bpfnb.link import (
    attach_fentry,
    attach_kprobe,
    attach_perf_event,
    attach_raw_tracepoint,
    attach_tracepoint,
    attach_uprobe,
    probes,
    sweep_stale_probes,
)
from bpfnb.link.kprobe import kprobes_available
from bpfnb.sys import bpf, tracefs
from bpfnb.sys.constants import AttachType, ProgType
from tests.conftest import need
from tests.kernel.test_link_support import (
    EXIT_0,
    PT_REGS_AX,
    array_map,
    counter_insns,
    load,
    read_slot,
)

TARGET_C = """
__attribute__((noinline)) int bpfnb_target(int x) { return 3 * x + 1; }
"""


def probe_entries(only_ours: bool = False) -> str:
    """tracefs kprobe/uprobe entries (only this process's, for checks that others may race)."""
    text = ""
    for kind in ("kprobe", "uprobe"):
        path = probes.events_file(kind)
        if path:
            text += Path(path).read_text()
    if only_ours:
        tag = f"bpfnb_{os.getpid()}_"
        text = "".join(line + "\n" for line in text.splitlines() if tag in line)
    return text


@pytest.fixture
def no_probe_leaks():
    before = probe_entries(only_ours=True)
    yield
    assert probe_entries(only_ours=True) == before == ""


@pytest.mark.parametrize("calls", [1, 250])
def test_tracepoint_counts_exact_getppid_calls(calls: int) -> None:
    need(tracefs.mount_point() is not None, "tracefs is not mounted")
    with (
        array_map() as counts,
        load(ProgType.TRACEPOINT, counter_insns(counts.fileno(), pid=os.getpid())) as prog,
    ):
        link = attach_tracepoint(prog.fileno(), "syscalls:sys_enter_getppid")
        try:
            for _ in range(calls):
                os.getppid()
            counted = read_slot(counts)
        finally:
            link.close()
        # Detached: more calls change nothing.
        os.getppid()
        assert read_slot(counts) == counted
    assert counted == calls
    assert (link.kind, link.target) == ("tracepoint", "syscalls:sys_enter_getppid")
    link.close()  # idempotent


def test_tracepoint_errors_name_the_problem() -> None:
    with load(ProgType.TRACEPOINT, EXIT_0) as prog:
        with pytest.raises(AttachError, match="no such tracepoint"):
            attach_tracepoint(prog.fileno(), "syscalls:sys_enter_no_such_call")
        with pytest.raises(ValueError, match="category:name"):
            attach_tracepoint(prog.fileno(), "sys_enter_getppid")


def test_raw_tracepoint_fires_for_our_syscalls() -> None:
    with (
        array_map() as counts,
        load(ProgType.RAW_TRACEPOINT, counter_insns(counts.fileno(), pid=os.getpid())) as prog,
    ):
        with attach_raw_tracepoint(prog.fileno(), "sys_enter"):
            for _ in range(100):
                os.getppid()
            counted = read_slot(counts)
        with pytest.raises(AttachError, match="no such tracepoint"):
            attach_raw_tracepoint(prog.fileno(), "no_such_raw_tracepoint")
    # Every getppid enters; the interpreter may make a few more syscalls of its own.
    assert counted >= 100


@pytest.fixture(scope="module")
def target_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(subprocess.run(["which", "gcc"], capture_output=True).returncode == 0, "no gcc")
    out = tmp_path_factory.mktemp("uprobe") / "libbpfnbtarget.so"
    source = out.with_suffix(".c")
    source.write_text(TARGET_C)
    subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-o", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.mark.parametrize("method", ["pmu", "tracefs"])
def test_uprobe_and_uretprobe_count_calls_and_read_return_values(
    target_library: Path, method: str, no_probe_leaks: None
) -> None:
    if method == "pmu":
        need(probes.pmu_type("uprobe") is not None, "no uprobe PMU")
    else:
        need(probes.events_file("uprobe") is not None, "no uprobe_events in tracefs")
    lib = ct.CDLL(str(target_library))
    lib.bpfnb_target.argtypes = [ct.c_int]
    pid = os.getpid()
    with (
        array_map() as calls,
        array_map() as returns,
        load(ProgType.KPROBE, counter_insns(calls.fileno(), pid=pid)) as entry_prog,
        load(ProgType.KPROBE, counter_insns(returns.fileno(), pid, PT_REGS_AX)) as ret_prog,
    ):
        entry = attach_uprobe(
            entry_prog.fileno(), str(target_library), "bpfnb_target", pid=pid, method=method
        )
        ret = attach_uprobe(
            ret_prog.fileno(), str(target_library), "bpfnb_target", ret=True, method=method
        )
        try:
            results = [lib.bpfnb_target(x) for x in range(57)]
            counted, summed = read_slot(calls), read_slot(returns)
        finally:
            entry.close()
            ret.close()
    assert counted == 57
    assert summed == sum(results) == sum(3 * x + 1 for x in range(57))
    assert ret.kind == "uretprobe" and "bpfnb_target" in ret.target


def test_uprobe_in_a_library_found_by_name(no_probe_leaks: None) -> None:
    need(probes.pmu_type("uprobe") is not None, "no uprobe PMU")
    libc = ct.CDLL(None)
    libc.getpid.restype = ct.c_int
    with (
        array_map() as calls,
        load(ProgType.KPROBE, counter_insns(calls.fileno(), pid=os.getpid())) as prog,
        attach_uprobe(prog.fileno(), "c", "getpid", pid=os.getpid()) as link,
    ):
        for _ in range(20):
            libc.getpid()
        counted = read_slot(calls)
    assert counted >= 20
    assert "libc.so" in link.target


def test_uprobe_errors() -> None:
    with load(ProgType.KPROBE, EXIT_0) as prog:
        with pytest.raises(AttachError, match="no function 'no_such_function'"):
            attach_uprobe(prog.fileno(), "c", "no_such_function")
        with pytest.raises(AttachError, match="no library or program named"):
            attach_uprobe(prog.fileno(), "no_such_library_xyz", "f")


def test_sweep_removes_probes_of_dead_processes(target_library: Path) -> None:
    need(probes.events_file("uprobe") is not None, "no uprobe_events in tracefs")
    child = subprocess.Popen(["true"])
    child.wait()  # a pid that is gone
    name = f"bpfnb_{child.pid}_0_stale"
    line = f"p:uprobes/{name} {target_library}:0x0"
    probes.write_events("uprobe", line)
    try:
        assert name in probe_entries()
        removed = sweep_stale_probes()
        assert f"uprobes/{name}" in removed
        assert name not in probe_entries()
    finally:
        if name in probe_entries():
            probes.write_events("uprobe", f"-:uprobes/{name}")


def test_perf_event_program_samples_our_process() -> None:
    with (
        array_map() as samples,
        load(ProgType.PERF_EVENT, counter_insns(samples.fileno(), pid=os.getpid())) as prog,
        # One cpu-clock sample per millisecond on every CPU; count those landing in this process.
        attach_perf_event(prog.fileno(), "cpu-clock", sample_period=1_000_000),
    ):
        start = time.thread_time()
        while time.thread_time() - start < 0.2:
            pass
        counted = read_slot(samples)
    # 0.2 s of our CPU time at 1 kHz: about 200 samples, with slack for a busy machine.
    assert 100 <= counted <= 300


def test_kprobes_refused_with_the_reason_here() -> None:
    if kprobes_available():  # a kernel with kprobes is no failure (test_kprobes_fentry uses it)
        pytest.skip("this kernel has kprobes")
    with load(ProgType.KPROBE, EXIT_0) as prog, pytest.raises(KernelFeatureError) as err:
        attach_kprobe(prog.fileno(), "do_sys_openat2")
    assert "CONFIG_KPROBES" in str(err.value)


def test_fentry_refused_with_the_reason_here() -> None:
    from bpfnb.sys.features import tracing_load_error

    try:
        # With a target: without one, kernels that run tracing programs reject the load too.
        prog = bpf.prog_load(
            ProgType.TRACING,
            EXIT_0,
            name="t",
            expected_attach_type=AttachType.TRACE_FENTRY,
            attach_btf_id=vmlinux_function_btf_id("do_sys_openat2"),
        )
    except OSError as err:
        error = tracing_load_error(err, "fentry/do_sys_openat2")
        need(isinstance(error, KernelFeatureError), f"tracing load failed otherwise: {err}")
        assert "refuses tracing programs" in str(error)
        return
    with prog:  # pragma: no cover - kernels that load tracing programs
        pytest.skip("this kernel loads tracing programs")
        attach_fentry(prog.fileno())
