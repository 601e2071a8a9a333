"""ELF objects attached by section and by explicit calls, every link recorded and detached by
``close()``; the kprobe and fentry refusals here; and the 100-round leak check."""

from __future__ import annotations

import ctypes as ct
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bpfnb import BpfObject
from bpfnb.elf.compiler import elf_cflags
from bpfnb.elf.loader import load_elf
from bpfnb.errors import KernelFeatureError
from bpfnb.link import attach_uprobe, probes
from tests.conftest import need
from tests.kernel.test_link_network import (
    PAYLOAD,
    SENDER,
    cgroup_dir,  # noqa: F401 - fixture
    drain,
    free_port,
    send_from_namespace,
    send_udp,
    veth_pair,  # noqa: F401 - fixture
)
from tests.kernel.test_link_tracing import TARGET_C

CONSTANTS = {"packet_len": 20 + 8 + PAYLOAD}


@pytest.fixture(scope="module")
def target_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("elf-uprobe") / "libbpfnbelftarget.so"
    source = out.with_suffix(".c")
    source.write_text(TARGET_C)
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(out), str(source)], check=True)
    return out


@pytest.fixture(scope="module")
def link_all(clang_build, target_lib: Path) -> Path:
    return clang_build("link_all", f'-DTARGET_LIB="{target_lib}"', *elf_cflags())


def load_all(path: Path, **constants: object) -> BpfObject:
    obj = load_elf(path, constants={"target_pid": os.getpid(), **CONSTANTS, **constants})
    assert isinstance(obj, BpfObject)
    return obj


def test_sections_attach_automatically_and_count_exactly(link_all: Path, target_lib: Path) -> None:
    lib = ct.CDLL(str(target_lib))
    with load_all(link_all) as obj:
        attached = {name: prog.attach_points for name, prog in obj.programs.items()}
        for _ in range(77):
            os.getppid()
        results = [lib.bpfnb_target(x) for x in range(31)]
        assert obj.maps["getppid_calls"][0] == 77
        assert obj.maps["raw_enters"][0] >= 77
        assert obj.maps["target_calls"][0] == 31
        assert obj.maps["target_returns"][0] == sum(results)
    assert attached["count_getppid"] == ["tracepoint:syscalls:sys_enter_getppid"]
    assert attached["count_raw_enter"] == ["raw_tracepoint:sys_enter"]
    assert attached["count_target"] == [f"uprobe:{target_lib}:bpfnb_target"]
    assert attached["sum_target_returns"] == [f"uretprobe:{target_lib}:bpfnb_target"]
    # No target in the section name: left for explicit calls.
    for name in ("count_samples", "count_lo_packets", "count_cgroup_packets", "xdp_udp"):
        assert attached[name] == []
    # close() detached every recorded link.
    assert len(obj.links) == 4
    assert all(link.closed for _, link in obj.links)


def test_explicit_attach_methods(link_all: Path, cgroup_dir: str) -> None:  # noqa: F811
    port = free_port()
    with load_all(link_all) as obj:
        lo = obj.attach_socket_filter("count_lo_packets", "lo")
        obj.attach_perf_event(obj.programs["count_samples"], "cpu-clock", sample_period=1_000_000)
        cg = obj.attach_cgroup("count_cgroup_packets", cgroup_dir)  # egress, from the section
        assert "egress" in cg.target
        send_udp(("127.0.0.1", port), 12)
        child = subprocess.Popen(
            [sys.executable, "-c", SENDER, "9", str(PAYLOAD), str(port)],
            stdin=subprocess.PIPE,
            text=True,
        )
        with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as procs:
            procs.write(str(child.pid))
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.close()
        assert child.wait(timeout=30) == 0
        start = time.thread_time()
        while time.thread_time() - start < 0.1:
            pass
        deadline = time.monotonic() + 2
        while obj.maps["lo_packets"][0] < 21 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert obj.maps["lo_packets"][0] == 12 + 9
        assert obj.maps["cgroup_packets"][0] == 9
        assert obj.maps["samples"][0] > 0
        frame = obj.maps["lo_packets"].to_frame()
        assert int(frame["value"].iloc[0]) == 21
        kinds = sorted(link.kind for _, link in obj.links)
        assert kinds == [
            "cgroup",
            "perf_event",
            "raw_tracepoint",
            "socket_filter",
            "tracepoint",
            "uprobe",
            "uretprobe",
        ]
    assert lo.closed and cg.closed


def test_explicit_xdp_drops_then_passes(link_all: Path, veth_pair) -> None:  # noqa: F811
    host_if, host_ip, ns, _ = veth_pair
    port = free_port()
    port_be = int.from_bytes(port.to_bytes(2, "big"), "little")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind((host_ip, port))
        for action, arrive in ((1, 0), (2, 15)):
            with load_all(link_all, xdp_action=action, xdp_port=port_be) as obj:
                obj.attach_xdp("xdp_udp", host_if)
                send_from_namespace(ns, (host_ip, port), 15)
                got = drain(receiver, arrive, timeout=1.0 if arrive else 0.3)
                assert (obj.maps["xdp_packets"][0], got) == (15, arrive)


def test_kprobe_sections_fail_clearly_here(clang_build) -> None:
    from bpfnb.link.kprobe import kprobes_available

    if kprobes_available():  # a kernel with kprobes is no failure (test_kprobes_fentry uses it)
        pytest.skip("this kernel has kprobes")
    path = clang_build("link_kprobe", *elf_cflags())
    with pytest.raises(KernelFeatureError, match="CONFIG_KPROBES"):
        load_elf(path)
    obj = load_elf(path, attach=False)
    with obj, pytest.raises(KernelFeatureError, match="CONFIG_KPROBES"):
        obj.attach_kprobe("on_open", "do_sys_openat2", ret=True)


def test_fentry_sections_fail_clearly_here(clang_build) -> None:
    path = clang_build("link_fentry", *elf_cflags())
    try:
        obj = load_elf(path)
    except KernelFeatureError as err:
        assert "refuses tracing programs" in str(err)
        return
    obj.close()  # pragma: no cover - kernels with BPF trampolines
    pytest.skip("this kernel runs fentry programs")


# -- the leak check --------------------------------------------------------------------------


def _bpftool(kind: str) -> list[dict]:
    out = subprocess.run(["bpftool", "-j", kind, "list"], capture_output=True, text=True)
    return json.loads(out.stdout or "[]")


def _present(ids: set[int]) -> dict[str, list]:
    """Which of the program ids ``ids`` the kernel still has, the links to them, and the
    tracefs probes of this process.

    Programs are matched by id, not name: other test runs on the machine load the same names.
    """
    progs = sorted(p["id"] for p in _bpftool("prog") if p["id"] in ids)
    links = [link for link in _bpftool("link") if link.get("prog_id") in ids]
    events = []
    for kind in ("kprobe", "uprobe"):
        path = probes.events_file(kind)
        if path:
            events += [x for x in Path(path).read_text().splitlines() if f"_{os.getpid()}_" in x]
    return {"progs": progs, "links": links, "events": events}


def test_no_leaks_after_100_load_attach_close_rounds(
    link_all: Path,
    target_lib: Path,
    cgroup_dir: str,  # noqa: F811
    veth_pair,  # noqa: F811
) -> None:
    need(subprocess.run(["which", "bpftool"], capture_output=True).returncode == 0, "no bpftool")
    host_if = veth_pair[0]
    before_events = _present(set())["events"]
    lib = ct.CDLL(str(target_lib))
    loaded: set[int] = set()
    total_links = 0
    for round_ in range(100):
        obj = load_all(link_all)
        try:
            ids = {prog.id for prog in obj.programs.values()}
            loaded |= ids
            obj.attach_socket_filter("count_lo_packets", "lo")
            obj.attach_perf_event("count_samples", "cpu-clock", sample_period=10_000_000)
            obj.attach_cgroup("count_cgroup_packets", cgroup_dir)
            obj.attach_xdp("xdp_udp", host_if)
            if round_ % 2:  # every other round through a tracefs uprobe_events entry
                probe = attach_uprobe(
                    obj.programs["count_target"].fd,
                    str(target_lib),
                    "bpfnb_target",
                    pid=os.getpid(),
                    method="tracefs",
                )
                obj.add_link("count_target", probe)
            else:
                obj.attach_uprobe("count_target", str(target_lib), "bpfnb_target", os.getpid())
            if round_ < 2:
                during = _present(ids)
                assert len(during["progs"]) == 8
                # perf links (tracepoint, uprobes, samples), raw_tp, cgroup and XDP links.
                assert len(during["links"]) >= 6
                assert len(during["events"]) == round_  # the tracefs probe, in odd rounds
            lib.bpfnb_target(round_)
            assert obj.maps["target_calls"][0] == 2  # the section's uprobe and ours
            total_links += len(obj.links)
        finally:
            obj.close()
    assert total_links == 100 * 9
    assert len(loaded) == 800
    after = _present(loaded)
    assert after == {"progs": [], "links": [], "events": before_events}
