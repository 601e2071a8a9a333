"""struct_ops: a TCP congestion control in BPF, registered with the kernel and used by a
socket; loaded with the same instructions as libbpf's."""

from __future__ import annotations

import socket

import pytest

import bpfnb
from bpfnb.elf import load, read
from bpfnb.errors import AttachError, ElfError
from tests.kernel.loadall import bpftool_loadall, tags

AVAILABLE = "/proc/sys/net/ipv4/tcp_available_congestion_control"
NAME = b"bpfnb_cc"


def available() -> list[str]:
    with open(AVAILABLE) as f:
        return f.read().split()


def connect_with(name: bytes) -> bytes:
    """Connect over loopback with congestion control ``name``; the name the socket reports."""
    with socket.create_server(("127.0.0.1", 0)) as server, socket.socket() as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, name)
        client.connect(server.getsockname())
        server.accept()[0].close()
        return client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0")


@pytest.mark.parametrize("flags", [(), ("-DLINK",)], ids=["map", "link"])
def test_a_bpf_congestion_control_registers_and_runs(clang_build, flags):
    assert "bpfnb_cc" not in available()
    with bpfnb.load_elf(clang_build("elf_struct_ops", *flags)) as obj:
        ((name, link),) = obj.links
        assert (name, link.kind) == ("bpfnb_cc", "struct_ops")
        assert "bpfnb_cc" in available()
        assert connect_with(NAME) == NAME
        # The kernel ran the init program when the socket started to use it.
        assert obj.maps[".bss"].to_frame()["sockets"].tolist() == [1]
        link.close()
        assert "bpfnb_cc" not in available()
        if flags:  # a .struct_ops.link map registers again, through a new link
            obj.attach_struct_ops("bpfnb_cc")
            assert "bpfnb_cc" in available()
        else:  # a plain struct_ops map registers once, as the kernel allows
            with pytest.raises(AttachError, match="registers a struct_ops map once"):
                obj.attach_struct_ops("bpfnb_cc")
    assert "bpfnb_cc" not in available()


def test_struct_ops_programs_load_as_libbpf_loads_them(clang_build):
    path = clang_build("elf_struct_ops")
    with load(path) as obj:
        assert not obj.links  # load() registers nothing
        assert tags(obj) == bpftool_loadall(path)


def test_a_struct_ops_program_in_no_map_says_so(clang_build):
    spec = read(clang_build("elf_struct_ops"))
    assert spec.maps["bpfnb_cc"].struct_ops == {
        0: "bpfnb_ssthresh",
        1: "bpfnb_cong_avoid",
        2: "bpfnb_undo_cwnd",
        3: "bpfnb_init",
    }
    spec.maps["bpfnb_cc"].struct_ops.clear()
    with pytest.raises(ElfError, match="'bpfnb_init' is in no struct_ops map"):
        load(spec)
