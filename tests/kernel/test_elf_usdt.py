"""USDT programs built with libbpf's ``usdt.bpf.h``, loaded by the ELF door: bpfnb writes each
site's argument spec into the object's spec map and gives the uprobe its spec id as the BPF
cookie (or, as on kernels without cookies, the site's address in the address map)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from bpfnb.elf import load_elf
from bpfnb.errors import AttachError
from bpfnb.sys import features
from tests.usdt_workload import (
    ARGS,
    build_workload,
    counted_ticks,
    expected_ticks,
    start_waiting,
)

N = 300


@pytest.fixture(scope="module")
def workload(tmp_path_factory) -> Path:
    return build_workload(tmp_path_factory.mktemp("usdt"), "-O2")


@pytest.fixture(scope="module")
def fixed_workload(tmp_path_factory) -> Path:
    # Linked at a fixed address: a site's address is the same in every process.
    return build_workload(tmp_path_factory.mktemp("usdt-fixed"), "-O2", "-no-pie")


def _run(proc) -> tuple[int, int]:
    out, _ = proc.communicate("go\n", timeout=20)
    assert proc.returncode == 0
    fired, semaphore = out.split()
    return int(fired), int(semaphore)


def test_arguments_and_cookie_read_through_libbpfs_specs(clang_build, workload) -> None:
    path = clang_build("elf_usdt", f'-DWORKLOAD="{workload}"')
    args = (-7, 250, 5_000_000_000, -1234)
    proc = start_waiting(workload, N, *args)
    try:
        with load_elf(path) as obj:
            # The section named the gated probe: attached at load, its semaphore raised.
            assert [link.kind for link in obj.programs["on_gated"].links] == ["usdt"]
            tick_links = obj.attach_usdt("on_tick", str(workload), "bpfnbtest", "tick")
            assert len(tick_links) == 2  # the probe's two sites
            obj.attach_usdt("on_args", str(workload), "bpfnbtest", "args", cookie=0xC0FFEE)
            fired, semaphore = _run(proc)
            assert counted_ticks(obj) == expected_ticks(N)
            bss = obj.maps[".bss"].to_frame()
            assert bss["args_seen"][0].tolist() == [*args, ARGS[4], 0xC0FFEE]
            assert fired == N and semaphore == 1
            assert int(bss["gated_count"][0]) == N
    finally:
        if proc.poll() is None:
            proc.kill()


def test_without_bpf_cookies_sites_are_found_by_address(
    clang_build, workload, fixed_workload, monkeypatch
) -> None:
    # As on a kernel before 5.15: the loader sets LINUX_HAS_BPF_COOKIE to false, and the
    # program looks its instruction pointer up in __bpf_usdt_ip_to_spec_id.
    monkeypatch.setattr(features, "bpf_cookie", lambda: False)
    path = clang_build("elf_usdt")
    with load_elf(path) as obj:
        with pytest.raises(AttachError, match="pass pid="):
            obj.attach_usdt("on_tick", str(workload), "bpfnbtest", "tick")
        proc = start_waiting(workload, N, -7, 250, 5_000_000_000, -1234)
        try:
            links = obj.attach_usdt("on_tick", str(workload), "bpfnbtest", "tick", pid=proc.pid)
            obj.attach_usdt("on_args", str(workload), "bpfnbtest", "args", pid=proc.pid, cookie=9)
            assert len(obj.maps["__bpf_usdt_ip_to_spec_id"].to_frame()) == 3
            _run(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert counted_ticks(obj) == expected_ticks(N)
        assert obj.maps[".bss"].to_frame()["args_seen"][0].tolist() == [
            -7,
            250,
            5_000_000_000,
            -1234,
            ARGS[4],
            9,
        ]
        for link in links:
            link.close()
        assert len(obj.maps["__bpf_usdt_ip_to_spec_id"].to_frame()) == 1  # the args site's

    with load_elf(path) as obj:
        obj.attach_usdt("on_tick", str(fixed_workload), "bpfnbtest", "tick")  # any process
        _run(start_waiting(fixed_workload, N))
        assert counted_ticks(obj) == expected_ticks(N)


PYTHON_CALLS = r"""
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

__u64 target_calls, target_line, lines;

SEC("usdt//usr/bin/python3.11:python:function__entry")
int BPF_USDT(on_entry, char *file, char *func, int line)
{
    const char target[] = "bpfnb_target";
    char name[sizeof(target)] = {};
    bpf_probe_read_user_str(name, sizeof(name), func);
    for (int i = 0; i < sizeof(target); i++)
        if (name[i] != target[i])
            return 0;
    __sync_fetch_and_add(&target_calls, 1);
    target_line = line;
    return 0;
}

/* Python 3.11 calls its function__entry probe only while the line probe is enabled too. */
SEC("usdt//usr/bin/python3.11:python:line")
int BPF_USDT(on_line)
{
    __sync_fetch_and_add(&lines, 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture
def bpf_shell():
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "bpfnb")
    yield ip
    ip.run_line_magic("bpf_close", "--all")


def test_python_calls_counted_by_an_elf_cell(bpf_shell) -> None:
    from tests.kernel.test_bcc_usdt import PYTHON, PYTHON_WORKLOAD, _wait_until_mapped

    from_c, from_python = 400, 150
    argv = [str(PYTHON), "-c", PYTHON_WORKLOAD, str(from_c), str(from_python)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        _wait_until_mapped(proc.pid, str(PYTHON))
        obj = bpf_shell.run_cell_magic("bpf", "pycalls --elf", PYTHON_CALLS)
        proc.communicate("go\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    seen = obj.maps[".bss"].to_frame().iloc[0]
    assert (seen["target_calls"], seen["target_line"]) == (from_c + from_python, 3)
    assert seen["lines"] > 3 * (from_c + from_python)
