"""``%%bpf --cluster`` on a local ipyparallel cluster of three engines (one for this module).

Each engine filters on its own pid (``-D PID={pid}``, filled on each engine) and makes a known,
different number of getppid() calls, sent to it through ipyparallel: the gathered frame must
hold exactly those counts, engine by engine. The test that kills an engine runs last.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from bpfnb.errors import BpfError, ClusterError, CompileError, Interrupted
from tests.conftest import need

try:
    import ipyparallel as ipp
except ImportError:  # the fixture says so: skipped, or failed under BPFNB_REQUIRE_KERNEL=1
    ipp = None

COUNTER = """
BPF_ARRAY(calls, u64, 1);
BPF_HISTOGRAM(sizes);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if (bpf_get_current_pid_tgid() >> 32 != PID)
        return 0;
    calls.increment(0);
    sizes.increment(bpf_log2l(SIZE));
    return 0;
}
"""

EVENTS = """
struct event_t {
    u32 pid;
    u64 seq;
};
BPF_ARRAY(sequence, u64, 1);
BPF_PERF_OUTPUT(events);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u64 id = bpf_get_current_pid_tgid();
    if (id >> 32 != PID)
        return 0;
    int zero = 0;
    u64 *next = sequence.lookup(&zero);
    if (!next)
        return 0;
    struct event_t event = {.pid = id >> 32, .seq = __sync_fetch_and_add(next, 1)};
    events.perf_submit(args, &event, sizeof(event));
    return 0;
}
"""

CALLS = (5, 17, 42)  # getppid() calls made by the first, second and third engine


def interactive(func):
    # Sent by value and run in the engine's namespace, as ipyparallel.interactive does: the
    # engines need not import this test module.
    func.__module__ = "__main__"
    return func


@interactive
def _getppid_calls(n: int) -> int:
    import os

    for _ in range(n):
        os.getppid()
    return os.getpid()


@interactive
def _live_objects() -> list[str]:
    from bpfnb.cluster import engine

    return [key for key, obj in engine._objects().objects.items() if not obj.closed]


@pytest.fixture(scope="module")
def cluster(bcc_works_here: None):
    cluster = ipp.Cluster(n=3, log_level=30)  # an engine that dies logs its output
    client = cluster.start_and_connect_sync()
    try:
        client.wait_for_engines(3, timeout=120)
        yield cluster, client
    finally:
        client.close()
        cluster.stop_cluster_sync()


@pytest.fixture(scope="module")
def bcc_works_here() -> None:
    from tests.kernel.conftest import _bcc_works

    need(os.geteuid() == 0, "cluster tests need root on the engines")
    need(ipp is not None, "ipyparallel is not installed (pip install 'bpfnb[cluster]')")
    reason = _bcc_works()
    need(not reason, reason)


@pytest.fixture
def rc(cluster):
    return cluster[1]


@pytest.fixture
def shell(rc):
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "bpfnb")
    ip.user_ns["rc"] = rc
    yield ip
    ip.run_line_magic("bpf_close", "--all")


def _work(rc, calls: dict[int, int]) -> dict[int, int]:
    # Each engine makes its own number of getppid() calls; returns each engine's pid.
    pending = {engine: rc[engine].apply_async(_getppid_calls, n) for engine, n in calls.items()}
    return {engine: result.get(timeout=30) for engine, result in pending.items()}


def _counts(frame) -> dict[int, int]:
    return {int(e): int(v) for e, v in zip(frame["engine"], frame["value"])}


def _bpftool_ids() -> set[int]:
    out = subprocess.run(
        ["bpftool", "prog", "list", "--json"], capture_output=True, text=True, check=True
    )
    return {prog["id"] for prog in json.loads(out.stdout)}


def _program_ids(obj) -> set[int]:
    return {i for ids in obj.hosts["program_ids"] for i in ids}


def test_each_engine_counts_its_own_calls_exactly(shell, rc) -> None:
    engines = rc.ids[:3]
    obj = shell.run_cell_magic("bpf", "counter --engines rc -D PID={pid} -D SIZE=100", COUNTER)
    assert shell.user_ns["counter"] is obj and obj.engines == engines
    pids = _work(rc, dict(zip(engines, CALLS)))
    for _ in range(9):
        os.getppid()  # this process is none of the engines: not counted anywhere
    frame = obj.maps["calls"].to_frame()
    assert list(frame.columns[:2]) == ["host", "engine"]
    assert _counts(frame) == dict(zip(engines, CALLS))
    assert set(frame["host"]) == {os.uname().nodename}
    # {pid} was each engine's own pid.
    assert dict(zip(obj.hosts["engine"], obj.hosts["pid"])) == pids
    assert "tracepoint:syscalls:sys_enter_getppid on 3 engines" in repr(
        shell.run_line_magic("bpf_list", "")
    )


def test_histograms_merge_by_bucket_and_keep_per_host_rows(shell, rc) -> None:
    engines = rc.ids[:3]
    # The engines count sizes 1, 8 and 64: log2 slots 1, 4 and 7.
    obj = shell.run_cell_magic(
        "bpf", "hist --engines rc -D PID={pid} -D SIZE=(1<<(3*{engine}))", COUNTER
    )
    _work(rc, dict(zip(engines, CALLS)))
    per_host = obj.maps["sizes"].to_histogram()
    assert list(per_host.columns) == ["host", "engine", "slot", "low", "high", "count"]
    slot_of = {engines[0]: 1, engines[1]: 4, engines[2]: 7}
    for engine, n in zip(engines, CALLS):
        rows = per_host[per_host["engine"] == engine]
        assert list(rows["slot"]) == list(range(1, 8))  # aligned: every engine, every bucket
        assert dict(zip(rows["slot"], rows["count"])) == {
            s: (n if s == slot_of[engine] else 0) for s in range(1, 8)
        }
    merged = obj.maps["sizes"].to_histogram(merged=True)
    assert list(merged.columns) == ["slot", "low", "high", "count"]
    assert dict(zip(merged["slot"], merged["count"]))[4] == CALLS[1]
    assert int(merged["count"].sum()) == sum(CALLS)


def test_close_leaves_no_program_on_any_engine(shell, rc) -> None:
    obj = shell.run_cell_magic("bpf", "closing --engines rc -D PID={pid} -D SIZE=1", COUNTER)
    ids = _program_ids(obj)
    assert len(ids) == 3 and ids <= _bpftool_ids()
    shell.run_line_magic("bpf_close", "closing")
    assert obj.closed
    assert not ids & _bpftool_ids()
    assert not any(rc[:].apply_sync(_live_objects))


def test_rerun_replaces_on_every_engine_and_a_failed_rerun_keeps_it(shell, rc) -> None:
    engines = rc.ids[:3]
    first = shell.run_cell_magic("bpf", "again --engines rc -D PID={pid} -D SIZE=1", COUNTER)
    second = shell.run_cell_magic("bpf", "again --engines rc -D PID={pid} -D SIZE=1", COUNTER)
    assert first.closed and not (_program_ids(first) & _bpftool_ids())
    assert _program_ids(second) <= _bpftool_ids()
    broken = COUNTER.replace("calls.increment(0)", "calls.increment(slot)")
    with pytest.raises(CompileError) as info:
        shell.run_cell_magic("bpf", "again --engines rc -D PID={pid} -D SIZE=1", broken)
    rendered = "\n".join(info.value._render_traceback_())
    assert "on every engine" in rendered and "again still holds the previous version" in rendered
    assert shell.user_ns["again"] is second and not second.closed
    _work(rc, dict(zip(engines, CALLS)))
    assert _counts(second.maps["calls"].to_frame()) == dict(zip(engines, CALLS))


def test_an_engine_that_fails_to_load_is_reported_and_the_others_run(shell, rc) -> None:
    engines = rc.ids[:3]
    refusing = f"#if ENGINE == {engines[1]}\n#error this engine refuses\n#endif\n" + COUNTER
    obj = shell.run_cell_magic(
        "bpf", "partial --engines rc -D PID={pid} -D SIZE=1 -D ENGINE={engine}", refusing
    )
    assert obj.engines == [engines[0], engines[2]]
    [(host, engine, step, error)] = obj.failures.rows()
    assert (engine, step) == (engines[1], "load") and "this engine refuses" in error
    assert host == os.uname().nodename
    _work(rc, dict(zip(engines, CALLS)))
    assert _counts(obj.maps["calls"].to_frame()) == {engines[0]: CALLS[0], engines[2]: CALLS[2]}


def test_no_engine_loading_it_is_an_error_naming_each(shell, rc) -> None:
    with pytest.raises(ClusterError) as info:
        shell.run_cell_magic(
            "bpf", "none --engines rc -D E={engine}", "#if E\n#error one\n#else\n#error two\n#endif"
        )
    assert sorted(e for _, e, _, _ in info.value.failures) == sorted(rc.ids)
    assert "none" not in shell.user_ns


def test_duration_detaches_on_every_engine(shell, rc) -> None:
    engines = rc.ids[:3]
    obj = shell.run_cell_magic(
        "bpf", "timed --engines rc --duration 0.3 -D PID={pid} -D SIZE=1", COUNTER
    )
    assert not obj.attached and not any(p.attach_points for p in obj.programs.values())
    _work(rc, dict(zip(engines, CALLS)))
    assert _counts(obj.maps["calls"].to_frame()) == dict.fromkeys(engines, 0)


def test_interrupting_a_load_closes_it_on_every_engine(shell, rc, monkeypatch) -> None:
    from bpfnb.cluster import remote

    def interrupted(self, pending, timeout):
        raise KeyboardInterrupt  # the stop button, while the engines compile

    with monkeypatch.context() as patch:
        patch.setattr(remote.Engines, "wait", interrupted)
        with pytest.raises(Interrupted, match="closed on every engine"):
            shell.run_cell_magic("bpf", "stopped --engines rc -D PID={pid} -D SIZE=1", COUNTER)
    # Each engine runs its calls in order: once this answers, its load and close are done.
    assert rc[:].apply_sync(_live_objects) == [[]] * len(rc.ids)
    assert "stopped" not in shell.user_ns


def test_bpf_show_refreshes_a_cluster_map_from_the_loop(shell, rc) -> None:
    engines = rc.ids[:3]
    obj = shell.run_cell_magic("bpf", "shown --engines rc -D PID={pid} -D SIZE=1", COUNTER)
    cmap = obj.maps["calls"]
    blocking = []
    original = type(cmap).to_frame
    cmap.to_frame = lambda **kw: blocking.append(kw) or original(cmap, **kw)

    async def scenario():
        view = shell.run_line_magic("bpf_show", "shown.calls --interval 0.05")
        assert type(view).__name__ == "LiveTable" and view.running
        for engine, n in zip(engines, CALLS):
            await asyncio.wrap_future(rc[engine].apply_async(_getppid_calls, n))
        deadline = time.monotonic() + 20
        while _counts(view.data) != dict(zip(engines, CALLS)):
            assert time.monotonic() < deadline, view.data
            await asyncio.sleep(0.05)
        shell.run_line_magic("bpf_close", "shown")
        await asyncio.sleep(0.1)
        return view

    view = asyncio.run(scenario())
    assert len(blocking) == 1  # the first drawing only: the loop's refreshes were awaited
    assert view.refresh_count > 1 and not view.running


def test_event_streams_gather_with_host_and_per_host_counts(shell, rc) -> None:
    engines = rc.ids[:3]
    obj = shell.run_cell_magic("bpf", "evts --engines rc -D PID={pid}", EVENTS)
    stream = obj.stream("events")
    pids = _work(rc, dict(zip(engines, CALLS)))
    deadline = time.monotonic() + 20
    while len(stream) < sum(CALLS):
        assert time.monotonic() < deadline, stream
        stream.poll(0.1)
    frame = stream.to_frame()
    assert list(frame.columns) == ["host", "engine", "pid", "seq"]
    for engine, n in zip(engines, CALLS):
        rows = frame[frame["engine"] == engine]
        assert sorted(rows["seq"]) == list(range(n)) and set(rows["pid"]) == {pids[engine]}
    counts = stream.per_host
    assert dict(zip(counts["engine"], counts["received"])) == dict(zip(engines, CALLS))
    assert set(counts["lost"]) == {0}
    assert stream.stats.received == sum(CALLS) and stream.stats.lost == 0


def test_engines_must_name_a_cluster(shell) -> None:
    with pytest.raises(UsageError, match="--engines nowhere"):
        shell.run_cell_magic("bpf", "x --engines nowhere", COUNTER)
    shell.user_ns["three"] = 3
    with pytest.raises(BpfError, match="Client, view or Cluster"):
        shell.run_cell_magic("bpf", "x --engines three", COUNTER)


CLIENT_EXITS = """
import sys
import ipyparallel as ipp
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "bpfnb")
shell.user_ns["rc"] = ipp.Client(profile={profile!r}, cluster_id={cluster_id!r})
obj = shell.run_cell_magic("bpf", "left --engines rc -D PID={{pid}} -D SIZE=1", {body!r})
print(sorted(i for ids in obj.hosts["program_ids"] for i in ids))
"""


def test_a_client_that_exits_leaves_nothing_on_the_engines(cluster, rc) -> None:
    cluster, _ = cluster
    script = CLIENT_EXITS.format(
        profile=cluster.profile, cluster_id=cluster.cluster_id, body=COUNTER
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    ids = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert len(ids) == len(rc.ids)
    assert not ids & _bpftool_ids()
    assert rc[:].apply_sync(_live_objects) == [[]] * len(rc.ids)


TICKS = """
BPF_HASH(ticks, s64, u64, 4096);

int on_tick(struct pt_regs *ctx) {
    s64 value = 0;
    if (bpf_usdt_readarg(1, ctx, &value) == 0)
        ticks.increment(value);
    return 0;
}
"""


def test_usdt_probes_are_read_on_every_engine(shell, rc, tmp_path) -> None:
    from tests.usdt_workload import build_workload, expected_ticks, start_waiting

    workload = build_workload(tmp_path, "-O2")
    engines = rc.ids[:3]
    obj = shell.run_cell_magic(
        "bpf", f"ticks --engines rc --usdt {workload}:bpfnbtest:tick=on_tick", TICKS
    )
    proc = start_waiting(workload, 50)
    proc.communicate("go\n", timeout=20)
    assert proc.returncode == 0
    # Each engine traces every process of its host: all three saw the workload's 100 ticks,
    # i at one site and -i at the other (0 twice).
    frame = obj.maps["ticks"].to_frame()
    for engine in engines:
        rows = frame[frame["engine"] == engine]
        assert dict(zip(rows["key"], rows["value"])) == expected_ticks(50)
    with pytest.raises(UsageError, match="--usdt-pid names a process on this host"):
        shell.run_cell_magic(
            "bpf",
            f"x --engines rc --usdt {workload}:bpfnbtest:tick=on_tick --usdt-pid {os.getpid()}",
            TICKS,
        )


def test_a_killed_engine_is_reported_and_the_others_still_gather(shell, rc) -> None:
    # Runs last: it leaves the module's cluster one engine short.
    engines = rc.ids[:3]
    obj = shell.run_cell_magic("bpf", "victim --engines rc -D PID={pid} -D SIZE=1", COUNTER)
    pids = _work(rc, dict(zip(engines, CALLS)))
    os.kill(pids[engines[1]], signal.SIGKILL)
    obj.timeout = 5.0
    with pytest.warns(RuntimeWarning, match=f"engine {engines[1]} .* left out from now on"):
        frame = obj.maps["calls"].to_frame()
    assert _counts(frame) == {engines[0]: CALLS[0], engines[2]: CALLS[2]}
    [(host, engine, _, error)] = obj.failures.rows()
    assert engine == engines[1] and host == os.uname().nodename and error
    assert obj.engines == [engines[0], engines[2]]
    _work(rc, {engines[0]: 1, engines[2]: 2})
    assert _counts(obj.maps["calls"].to_frame()) == {
        engines[0]: CALLS[0] + 1,
        engines[2]: CALLS[2] + 2,
    }
    ids = _program_ids(obj)
    shell.run_line_magic("bpf_close", "victim")
    assert not ids & _bpftool_ids()
