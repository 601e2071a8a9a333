"""Networking attach points with traffic the tests send themselves: socket filters on ``lo``
and on a socket, cgroup_skb on a cgroup v2 made here, XDP on a veth pair in a new namespace."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time

import pytest

from bpfnb.errors import AttachError
from bpfnb.link import attach_cgroup, attach_socket_filter, attach_xdp
from bpfnb.sys.constants import AttachType, ProgType
from bpfnb.sys.mounts import mount_point_of
from tests.conftest import need
from tests.kernel.test_link_support import (
    EXIT_0,
    array_map,
    insn,
    load,
    packet_counter_insns,
    read_slot,
    xdp_udp_counter_insns,
)

PAYLOAD = 1237  # an unusual size, so that only our datagrams match the length filters
PACKET_HOST = 0
XDP_DROP, XDP_PASS = 1, 2


def returning(value: int) -> bytes:
    return insn(0xB7, 0, imm=value) + insn(0x95)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def send_udp(address: tuple[str, int], count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(count):
            s.sendto(b"x" * PAYLOAD, address)


def drain(sock: socket.socket, expected: int, timeout: float = 1.0) -> int:
    """Datagrams received within ``timeout`` (stops early once ``expected`` have arrived)."""
    got = 0
    deadline = time.monotonic() + timeout
    while got < expected or expected == 0:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            break
        sock.recv(65536)
        got += 1
    return got


def test_socket_filter_on_lo_sees_exactly_our_packets() -> None:
    # On lo a packet socket sees each datagram leave and arrive; count the arrivals.
    frame = 14 + 20 + 8 + PAYLOAD
    port = free_port()
    with (
        array_map() as counts,
        load(
            ProgType.SOCKET_FILTER, packet_counter_insns(counts.fileno(), frame, 0, PACKET_HOST)
        ) as prog,
    ):
        link = attach_socket_filter(prog.fileno(), "lo")
        try:
            assert link.socket.family == socket.AF_PACKET
            send_udp(("127.0.0.1", port), 40)
            deadline = time.monotonic() + 2
            while read_slot(counts) < 40 and time.monotonic() < deadline:
                time.sleep(0.01)
            counted = read_slot(counts)
        finally:
            link.close()
        assert link.socket.fileno() == -1  # the link owned the packet socket
    assert counted == 40


@pytest.mark.parametrize("given", ["socket", "fd"])
def test_socket_filter_on_a_socket_drops_then_detaches(given: str) -> None:
    udp_len = 8 + PAYLOAD  # a UDP socket's filter sees the datagram from its UDP header
    with (
        array_map() as counts,
        load(ProgType.SOCKET_FILTER, packet_counter_insns(counts.fileno(), udp_len, 0)) as prog,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
    ):
        receiver.bind(("127.0.0.1", 0))
        link = attach_socket_filter(
            prog.fileno(), receiver if given == "socket" else receiver.fileno()
        )
        try:
            send_udp(receiver.getsockname(), 25)
            assert drain(receiver, 0, timeout=0.3) == 0  # the filter returned 0: dropped
        finally:
            link.close()
        assert read_slot(counts) == 25
        send_udp(receiver.getsockname(), 25)
        assert drain(receiver, 25) == 25  # detached: everything arrives
        assert read_slot(counts) == 25


def test_socket_filter_errors() -> None:
    with (
        load(ProgType.SOCKET_FILTER, EXIT_0) as prog,
        pytest.raises(AttachError, match="no network interface"),
    ):
        attach_socket_filter(prog.fileno(), "nosuchif0")


@pytest.fixture
def cgroup_dir():
    root = mount_point_of("cgroup2")
    need(root is not None, "no cgroup v2 hierarchy is mounted")
    path = os.path.join(str(root), f"bpfnb-test-{os.getpid()}")
    os.mkdir(path)
    try:
        yield path
    finally:
        os.rmdir(path)


SENDER = """
import socket, sys
sys.stdin.readline()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    s.sendto(b"x" * int(sys.argv[2]), ("127.0.0.1", int(sys.argv[3])))
"""


def test_cgroup_skb_counts_packets_of_a_process_in_the_cgroup(cgroup_dir: str) -> None:
    ip_len = 20 + 8 + PAYLOAD  # cgroup_skb sees the packet from its IP header
    port = free_port()
    with (
        array_map() as counts,
        load(
            ProgType.CGROUP_SKB,
            packet_counter_insns(counts.fileno(), ip_len, 1),
            AttachType.CGROUP_INET_EGRESS,
        ) as prog,
    ):
        link = attach_cgroup(prog.fileno(), cgroup_dir, "egress")
        try:
            # Our own packets are outside the cgroup: not counted.
            send_udp(("127.0.0.1", port), 5)
            child = subprocess.Popen(
                [sys.executable, "-c", SENDER, "33", str(PAYLOAD), str(port)],
                stdin=subprocess.PIPE,
                text=True,
            )
            with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as procs:
                procs.write(str(child.pid))
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.close()
            assert child.wait(timeout=30) == 0
            counted = read_slot(counts)
        finally:
            link.close()
    assert counted == 33
    assert link.kind == "cgroup" and "egress" in link.target


def test_cgroup_errors(cgroup_dir: str) -> None:
    with load(ProgType.CGROUP_SKB, returning(1), AttachType.CGROUP_INET_INGRESS) as prog:
        with pytest.raises(AttachError, match="no such directory"):
            attach_cgroup(prog.fileno(), "/no/such/cgroup")
        with pytest.raises(ValueError, match="unknown cgroup attach type"):
            attach_cgroup(prog.fileno(), cgroup_dir, "sideways")


@pytest.fixture
def veth_pair():
    """(host interface, host address, namespace, namespace address); always torn down."""
    need(subprocess.run(["which", "ip"], capture_output=True).returncode == 0, "no iproute2")
    tag = f"{os.getpid() % 100000}"
    ns, host_if, ns_if = f"bpfnb-xdp-{tag}", f"bxh{tag}", f"bxn{tag}"
    subnet = f"10.{199}.{os.getpid() % 250}"
    host_ip, ns_ip = f"{subnet}.1", f"{subnet}.2"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    try:
        ip("netns", "add", ns)
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        ip("link", "set", ns_if, "netns", ns)
        ip("addr", "add", f"{host_ip}/24", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", ns, "addr", "add", f"{ns_ip}/24", "dev", ns_if)
        ip("-n", ns, "link", "set", ns_if, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        yield host_if, host_ip, ns, ns_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def send_from_namespace(ns: str, address: tuple[str, int], count: int) -> None:
    code = (
        "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for _ in range({count}): s.sendto(b'x' * {PAYLOAD}, {address!r})"
    )
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("mode", ["auto", "skb"])
def test_xdp_drops_then_passes_packets_on_a_veth(veth_pair, mode: str) -> None:
    host_if, host_ip, ns, _ = veth_pair
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind((host_ip, port))
        for action, arrive in ((XDP_DROP, 0), (XDP_PASS, 20)):
            with (
                array_map() as counts,
                load(ProgType.XDP, xdp_udp_counter_insns(counts.fileno(), port, action)) as prog,
            ):
                link = attach_xdp(prog.fileno(), host_if, mode)
                try:
                    send_from_namespace(ns, (host_ip, port), 20)
                    received = drain(receiver, arrive, timeout=1.0 if arrive else 0.3)
                    counted = read_slot(counts)
                finally:
                    link.close()
            assert (counted, received) == (20, arrive)
    # Detached: the interface takes a new XDP program again.
    with load(ProgType.XDP, returning(XDP_PASS)) as prog:
        attach_xdp(prog.fileno(), host_if).close()


def test_xdp_errors(veth_pair) -> None:
    host_if = veth_pair[0]
    with load(ProgType.XDP, returning(XDP_PASS)) as prog:
        with pytest.raises(AttachError, match="no network interface"):
            attach_xdp(prog.fileno(), "nosuchif0")
        with attach_xdp(prog.fileno(), host_if), pytest.raises(AttachError, match="already has"):
            attach_xdp(prog.fileno(), host_if)


def test_older_kernel_paths_work_here_too(cgroup_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With BPF_LINK_CREATE refused (as before Linux 5.7/5.15), cgroups fall back to
    BPF_PROG_ATTACH and perf events to the SET_BPF ioctl; both still count and detach."""
    import errno

    from bpfnb.link import attach_tracepoint
    from bpfnb.link import cgroup as cgroup_module
    from bpfnb.link import perf_event as perf_module
    from bpfnb.sys import bpf
    from tests.kernel.test_link_support import counter_insns

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EINVAL, "no links on this kernel")

    monkeypatch.setattr(cgroup_module.bpf, "link_create", refuse)
    monkeypatch.setattr(perf_module.bpf, "link_create", refuse)
    assert bpf.link_create is refuse  # one module object: every caller sees the refusal
    port = free_port()
    with (
        array_map() as counts,
        load(
            ProgType.CGROUP_SKB,
            packet_counter_insns(counts.fileno(), 20 + 8 + PAYLOAD, 1),
            AttachType.CGROUP_INET_EGRESS,
        ) as prog,
    ):
        link = attach_cgroup(prog.fileno(), cgroup_dir, "egress")
        try:
            assert link.fds == []  # no link fd: attached with BPF_PROG_ATTACH
            child = subprocess.Popen(
                [sys.executable, "-c", SENDER, "7", str(PAYLOAD), str(port)],
                stdin=subprocess.PIPE,
                text=True,
            )
            with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as procs:
                procs.write(str(child.pid))
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.close()
            assert child.wait(timeout=30) == 0
        finally:
            link.close()
        assert read_slot(counts) == 7
        # Detached by PROG_DETACH: the cgroup holds no program any more.
        out = subprocess.run(
            ["bpftool", "cgroup", "show", cgroup_dir], capture_output=True, text=True
        ).stdout
        assert "bpfnb_link_test" not in out
    with (
        array_map() as calls,
        load(ProgType.TRACEPOINT, counter_insns(calls.fileno(), pid=os.getpid())) as prog,
    ):
        with attach_tracepoint(prog.fileno(), "syscalls:sys_enter_getppid") as link:
            assert len(link.fds) == 1  # the perf event only: SET_BPF, no BPF link
            for _ in range(9):
                os.getppid()
        os.getppid()
        assert read_slot(calls) == 9


def test_socket_filter_on_a_raw_fd_that_is_not_a_socket() -> None:
    with (
        load(ProgType.SOCKET_FILTER, EXIT_0) as prog,
        open("/dev/null") as not_a_socket,
        pytest.raises(AttachError, match="not a socket"),
    ):
        attach_socket_filter(prog.fileno(), not_a_socket.fileno())
