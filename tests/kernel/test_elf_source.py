"""``%%bpf --elf`` cells end to end: compile, load, attach by section, count exact calls."""

from __future__ import annotations

import os
import shutil

import pytest

from bpfnb import BpfObject
from bpfnb.elf import load_source
from tests.conftest import need

COUNTER = """\
#include <bpf/bpf_helpers.h>

const volatile __u32 target_pid = 0;

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} calls SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int count(void *ctx)
{
    __u32 zero = 0;
    __u64 *n = bpf_map_lookup_elem(&calls, &zero);
    if (n && (bpf_get_current_pid_tgid() >> 32) == target_pid)
        __sync_fetch_and_add(n, 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

WITH_VMLINUX = """\
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} bytes SEC(".maps");

SEC("socket")
int measure(struct __sk_buff *skb)
{
    __u32 zero = 0;
    __u64 *n = bpf_map_lookup_elem(&bytes, &zero);
    if (n)
        __sync_fetch_and_add(n, skb->len);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.parametrize("headers", ["libbpf", "subset"])
def test_a_cell_counts_exact_calls(headers: str) -> None:
    # libbpf's <bpf/bpf_helpers.h> where installed (CI installs it), or bpfnb's own subset.
    need(shutil.which("clang") is not None, "clang is not installed")
    flags = ["-DBPFNB_HELPERS_SUBSET"] if headers == "subset" else []
    obj = load_source(
        COUNTER, name="counter", constants={"target_pid": os.getpid()}, clang_flags=flags
    )
    assert isinstance(obj, BpfObject)
    with obj:
        assert obj.name == "counter" and obj.source == COUNTER
        assert obj.programs["count"].attach_points == ["tracepoint:syscalls:sys_enter_getppid"]
        for _ in range(123):
            os.getppid()
        assert obj.maps["calls"][0] == 123


def test_a_cell_including_vmlinux_h() -> None:
    need(shutil.which("clang") is not None, "clang is not installed")
    need(shutil.which("bpftool") is not None, "bpftool is not installed")
    need(os.path.exists("/sys/kernel/btf/vmlinux"), "the kernel has no BTF")
    with load_source(WITH_VMLINUX, name="sizes") as obj:
        assert obj.programs["measure"].type_name == "socket_filter"
        assert obj.programs["measure"].links == []  # a socket filter waits for attach_*
