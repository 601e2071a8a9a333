"""Events per second: bcc's Python callbacks against ``EventStream``, on both buffer types.

A small C program (built here with gcc) calls ``getppid()`` N times in a tight loop; a
tracepoint program submits one fixed-size event (pid, cpu, ts, comm[16]) per call, filtered on
the producer's pid. Four consumers read the same workload, one after the other, from one run:

- bcc ``open_perf_buffer`` + ``perf_buffer_poll`` with a Python callback (``b[...].event()``),
- bcc ``open_ring_buffer`` + ``ring_buffer_poll`` with a Python callback,
- ``EventStream`` on the perf buffer, and on the ring buffer.

Each consumer runs live (reading while the producer runs), then drain (the producer first
fills buffers big enough for every event; then only reading and decoding is timed). A drain
takes well under a second and its rate varies from run to run on a VM (allocating and
decoding 2,000,000 rows), so each consumer drains DRAIN_RUNS times and the run with the
median wall time is reported. Every
consumer ends with a DataFrame of the events. Reported per consumer: events received,
lost (perf) or dropped (ring), as counted by the program at each failed submit (bpfnb wraps
the cell's submit calls), wall-clock events/s from start to drained, and events per second of
consumer CPU time (the decoding cost, independent of how fast the producer runs).
"unaccounted" must be 0.

Last, the producer's cost of that counting: events per second with and without it, into
buffers with room for every event (nothing fails, so only the success path is measured).
Run as root: ``.venv/bin/python benchmarks/event_stream.py [events]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import pandas as pd

import bpfnb
from bpfnb.events import open_stream
from bpfnb.events.drops import DropCounter

EVENTS = 2_000_000
# Live runs: 64 pages per CPU for perf; one ring of the same total size as 2 CPUs x 64 pages.
LIVE_PAGES = (64, 128)
# Drain runs: room for every event before anyone reads (128 MiB per ring).
DRAIN_PAGES = (32768, 32768)
# Drains per consumer; the median run is reported.
DRAIN_RUNS = 5

PRODUCER = r"""
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv) {
    long n = atol(argv[1]);
    char go;
    if (read(0, &go, 1) != 1)  /* wait until the consumer is ready */
        return 1;
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    return 0;
}
"""

PROGRAM = """
struct event_t {
    u32 pid;
    u32 cpu;
    u64 ts;
    char comm[16];
};
#ifdef RING
BPF_RINGBUF_OUTPUT(events, RING_PAGES);
#else
BPF_PERF_OUTPUT(events);
#endif

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u64 id = bpf_get_current_pid_tgid();
    if (id >> 32 != PID)
        return 0;
    struct event_t event = {};
    event.pid = id >> 32;
    event.cpu = bpf_get_smp_processor_id();
    event.ts = bpf_ktime_get_ns();
    bpf_get_current_comm(&event.comm, sizeof(event.comm));
#ifdef RING
    events.ringbuf_output(&event, sizeof(event), 0);
#else
    events.perf_submit(args, &event, sizeof(event));
#endif
    return 0;
}
"""


# Reads events until ``done()`` and then until drained: (received, lost or dropped, frame).
Drain = Callable[[Callable[[], bool]], tuple[int, int, pd.DataFrame]]


@dataclass
class Result:
    consumer: str
    received: int
    missed: int  # lost (perf) or dropped (ring)
    wall: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.received / self.wall

    @property
    def cpu_rate(self) -> float:
        return self.received / self.cpu


def build_producer(workdir: Path) -> Path:
    source = workdir / "producer.c"
    source.write_text(PRODUCER)
    binary = workdir / "producer"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], check=True)
    return binary


def run(
    consumer: str,
    ring: bool,
    producer: Path,
    events: int,
    consume: Callable[[bpfnb.BpfObject, int], Drain],
    prefill: bool,
) -> Result:
    """Start a paused producer, compile for its pid, open the consumer, then time it.

    Live (``prefill`` false): the clock starts with the producer and stops when the consumer
    has drained everything. Prefill: the producer runs to the end first, into buffers big
    enough for every event, and only the consumer's draining and decoding is timed.
    """
    perf_pages, ring_pages = DRAIN_PAGES if prefill else LIVE_PAGES
    proc = subprocess.Popen([str(producer), str(events)], stdin=subprocess.PIPE)
    defines: dict[str, object] = {"PID": proc.pid, "RING_PAGES": ring_pages}
    if ring:
        defines["RING"] = 1
    obj = bpfnb.compile(PROGRAM, defines=defines, name="bench")
    try:
        drain = consume(obj, perf_pages)
        assert proc.stdin is not None
        if prefill:
            proc.stdin.write(b"g")
            proc.stdin.close()
            proc.wait()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if not prefill:
            proc.stdin.write(b"g")
            proc.stdin.close()
        received, missed, frame = drain(lambda: proc.poll() is not None)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        assert len(frame) == received and proc.wait() == 0
    finally:
        proc.kill()
        proc.wait()
        obj.close()
    return Result(consumer, received, missed, wall, cpu)


def _drops(obj: bpfnb.BpfObject) -> DropCounter:
    return DropCounter(obj.loader.bpf[b"bpfnb_drops"].map_fd, "events")  # type: ignore[union-attr]


def bcc_perf(obj: bpfnb.BpfObject, pages: int) -> Drain:
    b = obj.loader.bpf  # type: ignore[union-attr]
    table = b[b"events"]
    rows: list[tuple[int, int, int, bytes]] = []
    lost = [0]

    def on_event(cpu: int, data: int, size: int) -> None:
        event = table.event(data)
        rows.append((event.pid, event.cpu, event.ts, event.comm))

    def on_lost(count: int) -> None:
        lost[0] += count

    drops = _drops(obj)
    table.open_perf_buffer(on_event, page_cnt=pages, lost_cb=on_lost)

    def drain(done: Callable[[], bool]) -> tuple[int, int, pd.DataFrame]:
        _poll_until_drained(lambda timeout: b.perf_buffer_poll(timeout=timeout), rows, done)
        result = len(rows), lost[0] + drops.count, _frame(rows)
        # bcc closes its per-CPU readers here, before the map goes: its __del__ would fail later.
        for cpu in list(table._open_key_fds):
            del table[cpu]
        return result

    return drain


def bcc_ring(obj: bpfnb.BpfObject, pages: int) -> Drain:
    b = obj.loader.bpf  # type: ignore[union-attr]
    table = b[b"events"]
    rows: list[tuple[int, int, int, bytes]] = []

    def on_event(ctx: object, data: int, size: int) -> int:
        event = table.event(data)
        rows.append((event.pid, event.cpu, event.ts, event.comm))
        return 0

    drops = _drops(obj)
    table.open_ring_buffer(on_event)

    def drain(done: Callable[[], bool]) -> tuple[int, int, pd.DataFrame]:
        _poll_until_drained(lambda timeout: b.ring_buffer_poll(timeout=timeout), rows, done)
        return len(rows), drops.count, _frame(rows)

    return drain


def _frame(rows: list[tuple[int, int, int, bytes]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["pid", "cpu", "ts", "comm"])
    frame["comm"] = frame["comm"].str.decode("utf-8")
    return frame


def _poll_until_drained(
    poll: Callable[[int], object], rows: list, done: Callable[[], bool]
) -> None:
    while not done():
        poll(100)
    while True:  # the producer has exited: read what is left
        before = len(rows)
        poll(0)
        if len(rows) == before:
            return


def stream(obj: bpfnb.BpfObject, pages: int) -> Drain:
    events = obj.stream("events", maxlen=EVENTS * 2, perf_pages=pages)

    def drain(done: Callable[[], bool]) -> tuple[int, int, pd.DataFrame]:
        while not done():
            events.poll(timeout=0.1)
        while events.poll():
            pass
        frame = events.to_frame()
        stats = events.stats
        return stats.received, stats.lost + stats.dropped, frame

    return drain


CONSUMERS = [
    ("perf", "bcc", "bcc callback, perf buffer", bcc_perf),
    ("ring", "bcc", "bcc callback, ring buffer", bcc_ring),
    ("perf", "bpfnb", "EventStream, perf buffer", stream),
    ("ring", "bpfnb", "EventStream, ring buffer", stream),
]


def report(title: str, events: int, results: dict[tuple[str, str], Result]) -> None:
    print(f"\n{title}")
    print(
        f"{'consumer':<28}{'received':>11}{'lost/drop':>11}{'unaccounted':>12}"
        f"{'wall ev/s':>12}{'CPU ev/s':>12}"
    )
    for result in results.values():
        print(
            f"{result.consumer:<28}{result.received:>11,}{result.missed:>11,}"
            f"{events - result.received - result.missed:>12,}"
            f"{result.rate:>12,.0f}{result.cpu_rate:>12,.0f}"
        )
    if any(r.received + r.missed != events for r in results.values()):
        print("(unaccounted events: the accounting is wrong)")
    for kind in ("perf", "ring"):
        ours, theirs = results[(kind, "bpfnb")], results[(kind, "bcc")]
        print(
            f"ratio EventStream / bcc, {kind} buffer: wall {ours.rate / theirs.rate:.1f}x, "
            f"CPU {ours.cpu_rate / theirs.cpu_rate:.1f}x"
        )


def producer_run(producer: Path, events: int, ring: bool, counted: bool) -> tuple[float, float]:
    """(seconds the producer takes, ns the BPF program spends per event) for ``events`` submits
    into buffers with room for all, so no submit fails."""
    proc = subprocess.Popen([str(producer), str(events)], stdin=subprocess.PIPE)
    defines: dict[str, object] = {"PID": proc.pid, "RING_PAGES": DRAIN_PAGES[1]}
    if ring:
        defines["RING"] = 1
    obj = bpfnb.compile(PROGRAM, defines=defines, name="bench", count_submits=counted)
    layout = obj.maps["events"].event_type  # type: ignore[attr-defined]
    # The rings are set up, but nobody reads them while the producer runs.
    rings = open_stream(obj.maps["events"].fd, layout, "events", perf_pages=DRAIN_PAGES[0],
                        background=False)  # fmt: skip
    try:
        assert proc.stdin is not None
        started = time.perf_counter()
        proc.stdin.write(b"g")
        proc.stdin.close()
        assert proc.wait() == 0
        seconds = time.perf_counter() - started
        (prog,) = obj.programs.values()
        shown = subprocess.run(
            ["bpftool", "prog", "show", "id", str(prog.id), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        stats = json.loads(shown.stdout)
        return seconds, stats["run_time_ns"] / stats["run_cnt"]
    finally:
        proc.kill()
        proc.wait()
        rings.close()
        obj.close()


def counting_cost(producer: Path, events: int, rounds: int = 9) -> None:
    """The producer's events per second with bpfnb's submit counting and without it, and the
    BPF program's own time per event (the kernel's bpf_stats, switched on for this)."""
    stats_switch = Path("/proc/sys/kernel/bpf_stats_enabled")
    before = stats_switch.read_text()
    stats_switch.write_text("1")
    try:
        runs: dict[tuple[str, bool], list[tuple[float, float]]] = {}
        for round_ in range(rounds):  # interleaved, in turns, so drift hits both alike
            for kind in ("perf", "ring"):
                for counted in (True, False) if round_ % 2 else (False, True):
                    run = producer_run(producer, events, kind == "ring", counted)
                    runs.setdefault((kind, counted), []).append(run)
    finally:
        stats_switch.write_text(before)
    print(f"\nProducer cost of counting failed submits ({events:,} events, median of {rounds})")
    print(f"{'buffer':<8}{'counted ev/s':>14}{'plain ev/s':>14}{'ratio':>8}"
          f"{'program ns/ev counted':>24}{'plain':>8}{'cost':>8}")  # fmt: skip
    for kind in ("perf", "ring"):
        counted_s, counted_ns = (median(x) for x in zip(*runs[(kind, True)]))
        plain_s, plain_ns = (median(x) for x in zip(*runs[(kind, False)]))
        # The program's extra time per event, against the producer's whole time per event.
        cost = (counted_ns - plain_ns) / (plain_s / events * 1e9)
        print(
            f"{kind:<8}{events / counted_s:>14,.0f}{events / plain_s:>14,.0f}"
            f"{plain_s / counted_s:>8.2f}{counted_ns:>24.1f}{plain_ns:>8.1f}{cost:>8.1%}"
        )


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else EVENTS
    with tempfile.TemporaryDirectory() as tmp:
        producer = build_producer(Path(tmp))
        live, drained = {}, {}
        for kind, side, name, consume in CONSUMERS:
            live[(kind, side)] = run(name, kind == "ring", producer, events, consume, False)
            runs = [
                run(name, kind == "ring", producer, events, consume, True)
                for _ in range(DRAIN_RUNS)
            ]
            drained[(kind, side)] = sorted(runs, key=lambda r: r.wall)[DRAIN_RUNS // 2]
    print(f"{events:,} events (pid, cpu, ts, comm[16]) per consumer; {os.cpu_count()} CPUs")
    report(
        f"Live: producer and consumer run together ({LIVE_PAGES[0]} pages per CPU for perf, "
        f"a {LIVE_PAGES[1]}-page ring)",
        events,
        live,
    )
    report(
        f"Drain: every event is buffered first; only reading and decoding is timed (median of "
        f"{DRAIN_RUNS} runs)",
        events,
        drained,
    )
    with tempfile.TemporaryDirectory() as tmp:
        counting_cost(build_producer(Path(tmp)), events // 4)


if __name__ == "__main__":
    main()
