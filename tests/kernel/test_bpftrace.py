"""``%%bpftrace`` and :mod:`bpfnb.bpftrace` on the real kernel: exact counts of a thread's
getppid calls, maps read while bpftrace runs, errors, and interrupts that leave no process
and no program behind."""

from __future__ import annotations

import errno
import os
import re
import shutil
import threading
import time

import pytest

import bpfnb.bpftrace
from bpfnb.sys import bpf
from tests.conftest import need

COUNT_GETPPID = """tracepoint:syscalls:sys_enter_getppid /tid == $1/ {
    @calls = count();
    @by_comm[comm] = count();
    @sizes = hist(100);
}
"""


@pytest.fixture(autouse=True)
def bpftrace_installed() -> None:
    need(
        shutil.which("bpftrace") is not None, "bpftrace is not installed (apt-get install bpftrace)"
    )


def _getppid(n: int) -> None:
    for _ in range(n):
        os.getppid()


def _program_ids(pid: int) -> set[int]:
    """The BPF programs process ``pid`` holds open (from its fdinfo)."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                found = re.search(r"^prog_id:\s+(\d+)", f.read(), re.M)
        except OSError:
            continue
        if found:
            ids.add(int(found.group(1)))
    return ids


def _program_exists(prog_id: int) -> bool:
    try:
        bpf.prog_get_fd_by_id(prog_id).close()
    except OSError as err:
        assert err.errno == errno.ENOENT
        return False
    return True


def _bpftrace_children(parent: int | None = None) -> set[int]:
    """The bpftrace child processes of ``parent`` (default: this process)."""
    parent = os.getpid() if parent is None else parent
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if comm == "bpftrace" and ppid == parent:
            found.add(int(entry))
    return found


def _assert_gone(pids: set[int], programs: set[int]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = {p for p in pids if os.path.exists(f"/proc/{p}")}
        loaded = {p for p in programs if _program_exists(p)}  # freed after the last fd closes
        if not alive and not loaded:
            return
        time.sleep(0.05)
    raise AssertionError(f"left behind: processes {alive}, programs {loaded}")


def test_timed_run_counts_exactly_and_keeps_final_maps() -> None:
    tid_box: list[int] = []
    attached = threading.Event()

    def worker() -> None:
        tid_box.append(threading.get_native_id())
        attached.wait(20)
        _getppid(321)

    thread = threading.Thread(target=worker)
    thread.start()
    while not tid_box:
        time.sleep(0.001)
    # progress() is first called once the probes are attached: the worker starts then.
    prog = bpfnb.bpftrace.run(
        COUNT_GETPPID,
        2.0,
        params=[tid_box[0]],
        write=lambda text: None,
        progress=lambda done: attached.set(),
    )
    thread.join()
    assert prog.closed and not prog.process.running
    assert prog.maps["@calls"].to_frame()["value"].tolist() == [321]
    frame = prog.maps["@by_comm"].to_frame()
    assert list(frame.columns) == ["key", "value"] and frame["value"].tolist() == [321]


def test_started_program_reads_maps_while_running_and_frees_all_on_close() -> None:
    prog = bpfnb.bpftrace.start(COUNT_GETPPID, params=[threading.get_native_id()], write=None)
    pid, programs = prog.process.pid, _program_ids(prog.process.pid)
    assert programs and _bpftrace_children() == {pid}
    _getppid(99)
    assert prog.maps["@calls"].to_frame()["value"].tolist() == [99]
    assert prog.process.output.dumps == 1 and prog.process.running
    prog.close()
    _assert_gone({pid}, programs)
    assert prog.maps["@calls"].to_frame()["value"].tolist() == [99]  # what bpftrace printed last
