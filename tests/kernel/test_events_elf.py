"""Streams over maps of a clang-built ELF object: the event type is given explicitly."""

from __future__ import annotations

import ctypes as ct
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bpfnb.elf.compiler import elf_cflags
from bpfnb.elf.loader import load_elf
from tests.conftest import need

SOURCE = r"""
#include <bpf/bpf_helpers.h>

struct event_t {
    __u32 pid;
    __u32 seq;
    __u64 ts;
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 4096);
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
def events_object(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(shutil.which("clang") is not None, "clang is not installed")
    out = tmp_path_factory.mktemp("events-elf")
    source = out / "events.c"
    source.write_text(SOURCE)
    obj = out / "events.o"
    cmd = [
        "clang",
        "-O2",
        "-g",
        "-target",
        "bpf",
        "-mcpu=v3",
        *elf_cflags(SOURCE),
        "-c",
        str(source),
    ]
    subprocess.run([*cmd, "-o", str(obj)], check=True, capture_output=True)
    return obj


def test_elf_ring_and_perf_streams_get_every_event(events_object: Path) -> None:
    n = 500
    with load_elf(events_object, constants={"target_pid": os.getpid()}) as obj:
        ring = obj.stream("ring", event_type=Event)
        perf = obj.stream("perf", event_type=Event)
        for _ in range(n):
            os.getppid()
        ring.poll()
        perf.poll()
        ring_frame, perf_frame = ring.to_frame(), perf.to_frame()
    assert ring.closed and perf.closed
    assert ring_frame["seq"].tolist() == list(range(n))
    assert sorted(perf_frame["seq"]) == list(range(n))
    assert (ring_frame["pid"] == os.getpid()).all() and (perf_frame["pid"] == os.getpid()).all()
    assert ring.stats.received == perf.stats.received == n
    assert perf.stats.lost == 0 and ring.stats.dropped == 0
