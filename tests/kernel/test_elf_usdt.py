"""USDT programs built with libbpf's ``usdt.bpf.h``, loaded by the ELF door: bpfnb writes each
site's argument spec into the object's spec map and gives the uprobe its spec id as the BPF
cookie (or, as on kernels without cookies, the site's address in the address map)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfnb.elf import load_elf
from bpfnb.errors import AttachError
from bpfnb.sys import features
from tests.usdt_workload import ARGS, build_workload, start_waiting

N = 300


@pytest.fixture(scope="module")
def workload(tmp_path_factory) -> Path:
    return build_workload(tmp_path_factory.mktemp("usdt"), "-O2")


@pytest.fixture(scope="module")
def fixed_workload(tmp_path_factory) -> Path:
    # Linked at a fixed address: a site's address is the same in every process.
    return build_workload(tmp_path_factory.mktemp("usdt-fixed"), "-O2", "-no-pie")


def _expected_ticks(n: int) -> dict[int, int]:
    # Site one passes i, site two -i, for i in 0..n-1: 0 twice, every other value once.
    expected = {0: 2}
    for i in range(1, n):
        expected[i] = expected[-i] = 1
    return expected


def _ticks(obj) -> dict[int, int]:
    frame = obj.maps["ticks"].to_frame()
    return dict(zip(frame["key"].tolist(), frame["value"].tolist()))


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
            assert _ticks(obj) == _expected_ticks(N)
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
        assert _ticks(obj) == _expected_ticks(N)
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
        assert _ticks(obj) == _expected_ticks(N)
