"""One BpfObject for both doors: bcc only compiles and loads, bpfnb.link attaches.

Every bcc attach/detach function (the ``BPF`` methods and libbcc's ``bpf_attach_*``) is replaced
by a recorder, so a test that attaches through every door and closes again proves that none is
called.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading

import numpy as np
import pytest

import bpfnb
from bpfnb.errors import MapError
from bpfnb.maps import QueueMap, StackMap
from bpfnb.sys.constants import ProgType
from tests.conftest import FIXTURES

COUNTERS = """
BPF_ARRAY(calls, u64, 4);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((u32)bpf_get_current_pid_tgid() != TID)
        return 0;
    calls.increment(0);
    return 0;
}

RAW_TRACEPOINT_PROBE(sys_enter) {
    if ((u32)bpf_get_current_pid_tgid() != TID || ctx->args[1] != NR_GETPPID)
        return 0;
    calls.increment(1);
    return 0;
}

int on_getpid(struct pt_regs *ctx) {
    if ((u32)bpf_get_current_pid_tgid() != TID)
        return 0;
    calls.increment(2);
    return 0;
}

int on_packet(struct __sk_buff *skb) {
    calls.increment(3);
    return 0;
}
"""


# syscall numbers of x86_64 and arm64 (raw sys_enter passes the number, not the name)
NR_GETPPID = {"x86_64": 110, "aarch64": 173}[os.uname().machine]
IDLE = {"TID": 0, "NR_GETPPID": NR_GETPPID}


@pytest.fixture
def no_bcc_attach(bcc_ok: None, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace every attach and detach function bcc has; returns the names of those called."""
    from bpfnb.bcc import import_bcc

    bcc = import_bcc()
    called: list[str] = []

    def recorder(name: str):
        def record(*args, **kwargs):
            called.append(name)
            raise AssertionError(f"bcc's {name} was called")

        return record

    for name in dir(bcc.BPF):
        if name.startswith(("attach_", "detach_", "_attach", "_detach")):
            monkeypatch.setattr(bcc.BPF, name, recorder(f"BPF.{name}"))
    for name in dir(bcc.lib):
        if name.startswith(("bpf_attach_", "bpf_detach_")):
            monkeypatch.setattr(bcc.lib, name, recorder(f"lib.{name}"))
    return called


def test_bcc_door_never_calls_bcc_attach_or_detach(no_bcc_attach: list[str]) -> None:
    tid = threading.get_native_id()
    obj = bpfnb.compile(COUNTERS, defines={"TID": tid, "NR_GETPPID": NR_GETPPID}, name="counters")
    try:
        uprobe = obj.attach_uprobe("on_getpid", "c", "getpid")
        obj.attach_socket_filter("on_packet", "lo")
        assert sorted(obj.programs) == [
            "on_getpid",
            "on_packet",
            "raw_tracepoint__sys_enter",
            "tracepoint__syscalls__sys_enter_getppid",
        ]
        assert obj.programs["on_getpid"].type == ProgType.KPROBE
        assert obj.programs["on_packet"].type == ProgType.SOCKET_FILTER
        libc = ctypes.CDLL("libc.so.6")
        for _ in range(31):
            os.getppid()
        for _ in range(17):
            libc.getpid()
        uprobe.close()  # detached alone: the others keep counting
        for _ in range(5):
            libc.getpid()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", ("127.0.0.1", 9))
        counts = [int(v) for v in obj.maps["calls"].values()]
    finally:
        obj.close()
    assert counts[:3] == [31, 31, 17]
    assert counts[3] >= 1
    assert obj.closed and not any(not link.closed for _, link in obj.links)
    assert no_bcc_attach == []


def test_both_doors_return_the_same_class(clang_build, bcc_ok: None) -> None:
    path = clang_build("elf_samples_maps")
    with (
        bpfnb.compile(COUNTERS, defines=IDLE, attach=False) as from_bcc,
        bpfnb.load_elf(path, attach=False) as from_elf,
    ):
        assert type(from_bcc) is type(from_elf) is bpfnb.BpfObject
        # bcc's conventional functions are loaded (not attached) at once; others on demand.
        assert "tracepoint__syscalls__sys_enter_getppid" in from_bcc.programs
        assert "on_getpid" not in from_bcc.programs
        assert all(not p.links for p in from_bcc.programs.values())
        assert all(not p.links for p in from_elf.programs.values())


def test_program_errors_name_what_exists(bcc_ok: None) -> None:
    with bpfnb.compile(COUNTERS, defines=IDLE, attach=False) as obj:
        with pytest.raises(KeyError, match="on_getpid, on_packet"):
            obj.attach_tracepoint("no_such_function", "syscalls:sys_enter_getppid")
        with pytest.raises(MapError, match="no map 'call'; did you mean 'calls'"):
            obj.stream("call")


QUEUES = """
BPF_QUEUE(queue, u32, 8);
BPF_STACK(stack, u32, 8);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((u32)bpf_get_current_pid_tgid() != TID)
        return 0;
    u32 value = 100;
    for (int i = 0; i < 3; i++) {
        value += 1;
        queue.push(&value, 0);
        stack.push(&value, 0);
    }
    return 0;
}
"""


def test_queue_and_stack_maps_push_pop_peek_and_frame(bcc_ok: None) -> None:
    with bpfnb.compile(QUEUES, defines={"TID": threading.get_native_id()}) as obj:
        queue, stack = obj.maps["queue"], obj.maps["stack"]
        assert isinstance(queue, QueueMap) and isinstance(stack, StackMap)
        os.getppid()  # the program pushes 101, 102, 103 into both
        assert queue.peek() == 101 and stack.peek() == 103
        kept = queue.to_frame()
        assert kept["value"].tolist() == [101, 102, 103] and kept.attrs["drained"] is False
        assert len(queue) == 3  # put back in order
        assert stack.to_frame()["value"].tolist() == [103, 102, 101]
        assert stack.pop() == 103  # still a stack after being put back
        queue.push(7)
        drained = queue.to_frame(drain=True)
        assert drained["value"].tolist() == [101, 102, 103, 7] and drained.attrs["drained"]
        with pytest.raises(KeyError, match="empty"):
            queue.pop()
        with pytest.raises(MapError, match="no keys; use push"):
            queue[0]
        for value in range(8):
            queue.push(value)
        with pytest.raises(MapError, match="full"):
            queue.push(8)
        queue.push(8, overwrite=True)  # drops the oldest
        assert queue.to_frame(drain=True)["value"].tolist() == [*range(1, 8), 8]
        assert np.dtype(queue.value_type.dtype) == np.dtype("<u4")


def test_elf_objects_use_the_same_attach_methods(clang_build) -> None:
    source = FIXTURES / "link_all.c"
    assert source.exists()
    from bpfnb.elf.compiler import elf_cflags

    path = clang_build("link_all", *elf_cflags())
    with bpfnb.load_elf(path, attach=False) as obj:
        link = obj.attach_socket_filter("count_lo_packets", "lo")
        assert link.kind == "socket_filter" and obj.links == [("count_lo_packets", link)]
        assert obj.attached
        obj.detach()
        assert link.closed and not obj.attached and not obj.closed
