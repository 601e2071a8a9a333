"""Link helpers that need no kernel: tracepoint names, PMU bits, symbol offsets, the sweep."""

from __future__ import annotations

import ctypes as ct
import os
import subprocess

import pytest

from bpfnb.errors import AttachError
from bpfnb.link import probes
from bpfnb.link.binaries import find_binary, find_library, symbol_offset
from bpfnb.link.cgroup import CGROUP_ATTACH_TYPES
from bpfnb.link.fdlink import FdLink
from bpfnb.link.tracepoint import split_tracepoint
from bpfnb.sys.constants import AttachType


def test_split_tracepoint() -> None:
    assert split_tracepoint("syscalls:sys_enter_openat") == ("syscalls", "sys_enter_openat")
    assert split_tracepoint("sched/sched_switch") == ("sched", "sched_switch")
    for bad in ("sched_switch", ":x", "x:", "a:b:c"):
        with pytest.raises(ValueError):
            split_tracepoint(bad)


def test_retprobe_bit_read_from_the_pmu_format(tmp_path, monkeypatch) -> None:
    fmt = tmp_path / "uprobe" / "format"
    fmt.mkdir(parents=True)
    (fmt / "retprobe").write_text("config:3\n")
    monkeypatch.setattr(probes, "PMU_DIR", str(tmp_path))
    assert probes.retprobe_bit("uprobe") == 3
    assert probes.retprobe_bit("kprobe") == 0  # absent: bit 0, the kernel's choice


def _file_bytes(path: str, offset: int, n: int = 16) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(n)


@pytest.mark.parametrize("symbol", ["malloc", "getpid", "strlen"])
def test_symbol_offsets_point_at_the_code_this_process_runs(symbol: str) -> None:
    # strlen is an IFUNC: its offset must be the implementation the dynamic linker picked.
    path = find_library("c")
    assert path is not None and "libc.so" in path
    libc = ct.CDLL(path)
    address = ct.cast(getattr(libc, symbol), ct.c_void_p).value
    assert address
    # Byte 0 is skipped: a uprobe someone else has on the function shows there as int3.
    assert _file_bytes(path, symbol_offset(path, symbol))[1:] == ct.string_at(address, 16)[1:]


def test_symbol_with_an_added_offset() -> None:
    path = find_binary("c")
    assert symbol_offset(path, "malloc+0x4") == symbol_offset(path, "malloc") + 4


def test_programs_are_found_on_path_and_missing_names_fail_clearly() -> None:
    assert find_binary("sh") == os.path.realpath(subprocess.getoutput("command -v sh"))
    with pytest.raises(AttachError, match="no library or program named"):
        find_binary("surely_no_such_thing_bpfnb")
    with pytest.raises(AttachError, match="does not exist"):
        find_binary("/no/such/file")
    with pytest.raises(AttachError, match="no function"):
        symbol_offset(find_binary("c"), "surely_no_such_function_bpfnb")


def test_sweep_removes_only_dead_bpfnb_probes(tmp_path, monkeypatch) -> None:
    events = tmp_path / "uprobe_events"
    dead = subprocess.Popen(["true"])
    dead.wait()
    lines = [
        f"p:uprobes/bpfnb_{dead.pid}_0_malloc /lib/libc.so.6:0x0000000000098930",
        f"p:uprobes/bpfnb_{os.getpid()}_1_malloc /lib/libc.so.6:0x0000000000098930",
        "p:uprobes/someone_else /lib/libc.so.6:0x0000000000098930",
    ]
    events.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(
        probes, "events_file", lambda kind: str(events) if kind == "uprobe" else None
    )
    removed = probes.sweep_stale_probes()
    assert removed == [f"uprobes/bpfnb_{dead.pid}_0_malloc"]
    # The removal was written as tracefs expects it, appended.
    assert events.read_text().splitlines()[-1] == f"-:uprobes/bpfnb_{dead.pid}_0_malloc"


def test_fd_link_runs_every_step_once_and_reports_the_first_failure() -> None:
    calls: list[str] = []

    def fail() -> None:
        calls.append("fail")
        raise OSError(5, "boom")

    link = FdLink("kind", "target", steps=[fail, lambda: calls.append("after")])
    with pytest.raises(OSError, match="boom"):
        link.close()
    link.close()
    assert calls == ["fail", "after"]
    assert link.closed and "closed" in repr(link)


def test_cgroup_attach_type_names() -> None:
    assert CGROUP_ATTACH_TYPES["ingress"] == AttachType.CGROUP_INET_INGRESS
    assert CGROUP_ATTACH_TYPES["egress"] == AttachType.CGROUP_INET_EGRESS
    assert CGROUP_ATTACH_TYPES["sock_create"] == AttachType.CGROUP_INET_SOCK_CREATE
