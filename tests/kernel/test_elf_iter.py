"""Iterator programs: iter/task loads with bpf_iter_task's BTF id, attaches by its section, and
each read runs it over every task."""

from __future__ import annotations

import os

import numpy as np

import bpfnb
from bpfnb.elf import load
from bpfnb.link import IterLink
from tests.conftest import need
from tests.kernel.loadall import bpftool_loadall, tags

RECORD = np.dtype([("pid", "<i4"), ("tgid", "<i4"), ("comm", "S16")])


def test_a_task_iterator_lists_this_process(clang_build):
    need(os.path.exists("/sys/kernel/btf/vmlinux"), "this kernel exposes no BTF")
    with bpfnb.load_elf(clang_build("elf_iter")) as obj:
        ((name, link),) = obj.links
        assert name == "dump_task" and isinstance(link, IterLink)
        assert obj.programs["dump_task"].attach_points == ["iter:task"]
        first, second = (np.frombuffer(link.read(), RECORD) for _ in range(2))
    with open("/proc/self/comm", "rb") as f:
        comm = f.read().strip()
    for records in (first, second):  # each read is a new pass
        ours = records[records["pid"] == os.getpid()]
        assert ours.tolist() == [(os.getpid(), os.getpid(), comm)]
        assert len(records) == len(set(records["pid"].tolist())) > 1


def test_a_task_iterator_loads_as_libbpf_loads_it(clang_build):
    path = clang_build("elf_iter")
    with load(path) as obj:
        assert tags(obj) == bpftool_loadall(path)
