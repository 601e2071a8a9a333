"""Streams over maps of a clang-built ELF object: the event type is given explicitly, and
failed submits are counted when the object includes ``<bpfnb/counted.h>``."""

from __future__ import annotations

import ctypes as ct
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bpfnb import BpfObject, EventStream
from bpfnb.elf.compiler import elf_cflags
from bpfnb.elf.loader import load_elf
from tests.conftest import need

SOURCE = r"""
#include <bpf/bpf_helpers.h>
#ifdef COUNTED
#include <bpfnb/counted.h>
#endif

struct event_t {
    __u32 pid;
    __u32 seq;
    __u64 ts;
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, RING_PAGES * 4096);
} ring SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} perf SEC(".maps");

const volatile __u32 target_pid = 0;
__u32 seq = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx) {
    if (bpf_get_current_pid_tgid() >> 32 != target_pid)
        return 0;
    struct event_t event = {
        .pid = target_pid,
        .seq = __sync_fetch_and_add(&seq, 1),
        .ts = bpf_ktime_get_ns(),
    };
    bpf_ringbuf_output(&ring, &event, sizeof(event), 0);
    bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &event, sizeof(event));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


class Event(ct.Structure):
    _fields_ = [("pid", ct.c_uint32), ("seq", ct.c_uint32), ("ts", ct.c_uint64)]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory):
    need(shutil.which("clang") is not None, "clang is not installed")
    out = tmp_path_factory.mktemp("events-elf")
    source = out / "events.c"
    source.write_text(SOURCE)

    def build(*defines: str) -> Path:
        obj = out / f"events{len(list(out.glob('*.o')))}.o"
        cmd = ["clang", "-O2", "-g", "-target", "bpf", "-mcpu=v3", *elf_cflags(SOURCE)]
        cmd += [f"-D{define}" for define in defines]
        subprocess.run([*cmd, "-c", str(source), "-o", str(obj)], check=True, capture_output=True)
        return obj

    return build


def _streams(obj: BpfObject, n: int, pages: int) -> tuple[EventStream, EventStream]:
    ring = obj.stream("ring", event_type=Event, maxlen=n)
    perf = obj.stream("perf", event_type=Event, maxlen=n, perf_pages=pages)
    for _ in range(n):
        os.getppid()
    ring.poll()
    perf.poll()
    return ring, perf


def test_elf_ring_and_perf_streams_get_every_event(build) -> None:
    n = 500
    path = build("COUNTED", "RING_PAGES=64")
    with load_elf(path, constants={"target_pid": os.getpid()}) as obj:
        ring, perf = _streams(obj, n, pages=64)
        ring_frame, perf_frame = ring.to_frame(), perf.to_frame()
    assert ring.closed and perf.closed
    assert ring_frame["seq"].tolist() == list(range(n))
    assert sorted(perf_frame["seq"]) == list(range(n))
    assert (ring_frame["pid"] == os.getpid()).all() and (perf_frame["pid"] == os.getpid()).all()
    assert ring.stats.received == perf.stats.received == n
    assert perf.stats.lost == 0 and ring.stats.dropped == 0


def test_counted_header_makes_overload_exact(build) -> None:
    # One-page buffers and a tight loop: most events fail to submit, and each failure is
    # counted by the wrappers <bpfnb/counted.h> puts around the helpers.
    n = 20_000
    path = build("COUNTED", "RING_PAGES=1")
    with load_elf(path, constants={"target_pid": os.getpid()}) as obj:
        ring, perf = _streams(obj, n, pages=1)
        ring_stats, perf_stats = ring.stats, perf.stats
    assert ring_stats.dropped > 0 and perf_stats.lost > 0
    assert ring_stats.received + ring_stats.dropped == n
    assert perf_stats.received + perf_stats.lost == n
    assert ring.counted and perf.counted


def test_without_the_header_the_stats_say_not_counted(build) -> None:
    path = build("RING_PAGES=1")
    with load_elf(path, constants={"target_pid": os.getpid()}) as obj:
        assert "bpfnb_drops" not in obj.maps
        ring, perf = _streams(obj, 2000, pages=1)
        ring_stats, perf_stats = ring.stats, perf.stats
    assert ring_stats.dropped is None and perf_stats.lost is None
    assert "not counted by the program" in repr(ring_stats)
    assert not ring.counted and not perf.counted
