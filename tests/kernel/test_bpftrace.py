"""``%%bpftrace`` and :mod:`bpfnb.bpftrace` on the real kernel: exact counts of a thread's
getppid calls, maps read while bpftrace runs, errors, and interrupts that leave no process
and no program behind."""

from __future__ import annotations

import _thread
import errno
import os
import re
import shutil
import threading
import time

import pytest
from IPython.core.interactiveshell import InteractiveShell

import bpfnb.bpftrace
from bpfnb.errors import BpftraceError
from bpfnb.sys import bpf
from bpfnb.widgets import LiveHistogram, LiveTable
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


@pytest.fixture
def shell():
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "bpfnb")
    yield ip
    ip.run_line_magic("bpf_close", "--all")


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


def test_running_cell_reads_maps_on_signal_and_stops_on_close(shell) -> None:
    tid = threading.get_native_id()
    prog = shell.run_cell_magic("bpftrace", f"counter {tid}", COUNT_GETPPID)
    assert shell.user_ns["counter"] is prog and not prog.closed
    pid, programs = prog.process.pid, _program_ids(prog.process.pid)
    assert programs  # bpftrace holds its loaded program
    _getppid(250)
    assert prog.maps["@calls"].to_frame().to_dict("list") == {"value": [250]}
    assert prog.maps["@by_comm"].to_frame()["value"].tolist() == [250]
    _getppid(50)
    assert prog.maps["@calls"].to_frame()["value"].tolist() == [300]
    assert prog.process.running  # a read does not stop bpftrace
    listing = repr(shell.run_line_magic("bpf_list", ""))
    assert "counter: tracepoint:syscalls:sys_enter_getppid" in listing
    shell.run_line_magic("bpf_close", "counter")
    assert prog.closed and "counter" not in repr(shell.run_line_magic("bpf_list", ""))
    _assert_gone({pid}, programs)
    _getppid(7)  # detached: no longer counted
    assert prog.maps["@calls"].to_frame()["value"].tolist() == [300]
    sizes = prog.maps["@sizes"].to_histogram()
    assert list(sizes.columns) == ["slot", "low", "high", "count"]
    assert sizes[["slot", "low", "high", "count"]].values.tolist() == [[7, 64, 127, 300]]


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


def test_duration_cell_prints_and_binds_the_final_maps(shell, capsys) -> None:
    program = """BEGIN { printf("hello from bpftrace\\n"); }
interval:ms:20 { @ticks = count(); }
"""
    prog = shell.run_cell_magic("bpftrace", "timed --duration 1.5", program)
    assert shell.user_ns["timed"] is prog and prog.closed
    assert "hello from bpftrace" in capsys.readouterr().out
    assert prog.maps["@ticks"].to_frame()["value"].iloc[0] > 0  # timers: no exact count


def test_rerun_stops_the_previous_bpftrace(shell) -> None:
    tid = threading.get_native_id()
    first = shell.run_cell_magic("bpftrace", f"again {tid}", COUNT_GETPPID)
    pid = first.process.pid
    second = shell.run_cell_magic("bpftrace", f"again {tid}", COUNT_GETPPID)
    assert first.closed and not second.closed and shell.user_ns["again"] is second
    _assert_gone({pid}, set())
    _getppid(5)
    assert second.maps["@calls"].to_frame()["value"].tolist() == [5]


def test_syntax_error_is_short_and_points_at_the_cell_line(shell) -> None:
    body = "BEGIN {\n    @a = 1 +;\n}\n"
    with pytest.raises(BpftraceError) as info:
        shell.run_cell_magic("bpftrace", "broken", body)
    err = info.value
    assert err.line == 2 and "syntax error" in err.message
    assert err.source_line == "    @a = 1 +;"
    assert len(err._render_traceback_()) == 3  # message, line, caret: no traceback
    assert "broken" not in shell.user_ns
    assert not _bpftrace_children()


def test_unknown_probe_is_a_bpftrace_error(shell) -> None:
    with pytest.raises(BpftraceError, match="tracepoint not found: syscalls:sys_enter_nope"):
        shell.run_cell_magic("bpftrace", "nope", "tracepoint:syscalls:sys_enter_nope { }\n")
    assert not _bpftrace_children()


def test_interrupt_stops_bpftrace_and_frees_its_programs(shell) -> None:
    seen: dict[str, set[int]] = {}
    shell.user_ns.pop("held", None)

    def interrupt() -> None:
        deadline = time.monotonic() + 30
        while "held" not in shell.user_ns and time.monotonic() < deadline:
            time.sleep(0.01)  # bound once attached, as the timed run starts
        prog = shell.user_ns["held"]
        seen["pids"] = _bpftrace_children()
        seen["programs"] = _program_ids(prog.process.pid)
        _thread.interrupt_main()

    timer = threading.Thread(target=interrupt)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            shell.run_cell_magic("bpftrace", "held --duration 30", COUNT_GETPPID.replace("$1", "0"))
    finally:
        timer.join()
    assert time.monotonic() - started < 15
    assert seen["pids"] and seen["programs"]
    assert shell.user_ns["held"].closed
    _assert_gone(seen["pids"], seen["programs"])
    assert not _bpftrace_children()


def test_live_views_on_bpftrace_maps(shell) -> None:
    tid = threading.get_native_id()
    shell.run_cell_magic("bpftrace", f"viewed {tid}", COUNT_GETPPID)
    hist = shell.run_line_magic("bpf_show", "viewed.@sizes")
    table = shell.run_line_magic("bpf_show", "viewed.@by_comm")
    assert isinstance(hist, LiveHistogram) and hist.kind == "log2"
    assert isinstance(table, LiveTable)
    _getppid(40)
    assert hist.refresh()["count"].sum() == 40
    assert table.refresh()["value"].tolist() == [40]
    shell.run_line_magic("bpf_close", "viewed")
    assert "source closed" in hist.status and "source closed" in table.status


def test_jupyter_interrupt_stops_bpftrace() -> None:
    """The kernel's interrupt (SIGINT to its process group, as JupyterLab's stop button sends)
    ends the cell; bpftrace, in a session of its own, is stopped by bpfnb."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        client.execute_interactive("%load_ext bpfnb", timeout=60)
        kernel_pid = manager.provisioner.process.pid
        msg_id = client.execute("%%bpftrace held --duration 60\ninterval:ms:10 { @n = count(); }")
        # The progress bar appears once the probes are attached, as the timed run starts.
        while True:
            message = client.get_iopub_msg(timeout=60)
            if message["parent_header"].get("msg_id") == msg_id and message["msg_type"] in (
                "display_data",
                "error",
            ):
                break
        assert message["msg_type"] == "display_data"
        time.sleep(0.5)  # some 10 ms ticks, so that the final maps hold a count
        [pid] = _bpftrace_children(kernel_pid)
        programs = _program_ids(pid)
        assert programs
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        _assert_gone({pid}, programs)
        printed: list[str] = []

        def collect(message: dict) -> None:
            if message["msg_type"] == "stream":
                printed.append(message["content"]["text"])

        client.execute_interactive(
            "print(held.closed, held.maps['@n'].to_frame()['value'].iloc[0] > 0)",
            timeout=30,
            output_hook=collect,
        )
        assert "".join(printed).split() == ["True", "True"]  # bound, stopped, final maps read
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


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


def test_refresh_from_the_programs_own_prints() -> None:
    program = """tracepoint:syscalls:sys_enter_getppid /tid == $1/ { @calls = count(); }
interval:ms:50 { print(@calls); }
"""
    tid = threading.get_native_id()
    prog = bpfnb.bpftrace.start(program, params=[tid], refresh="prints", write=None)
    try:
        _getppid(17)
        seen = prog.process.output.updates
        assert prog.process.wait(lambda: prog.process.output.updates > seen + 1, timeout=10)
        assert prog.maps["@calls"].to_frame()["value"].tolist() == [17]
        assert prog.process.output.dumps == 0  # read from print(@calls), never signalled
    finally:
        prog.close()


def test_a_program_that_exits_by_itself_is_closed_with_its_maps() -> None:
    prog = bpfnb.bpftrace.start('BEGIN { @answer = 42; printf("bye\\n"); exit(); }', write=None)
    assert prog.process.wait(lambda: not prog.process.running, timeout=10)
    assert prog.closed and prog.output == "bye\n"
    assert prog.maps["@answer"].to_frame()["value"].tolist() == [42]
