"""Tiny hand-assembled programs for the link tests (no ELF loader needed), and their maps.

Not tests themselves: the ``test_link_*`` modules import these helpers.
"""

from __future__ import annotations

import ctypes as ct
import struct

from bpfnb.sys import bpf
from bpfnb.sys.constants import MapType, ProgType
from bpfnb.sys.fd import FD

# x86-64 struct pt_regs: ax (the return value) and di (the first argument).
PT_REGS_AX = 80
PT_REGS_DI = 112


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def ld_map_fd(dst: int, fd: int) -> bytes:
    return insn(0x18, dst, 1, 0, fd) + insn(0)


EXIT_0 = insn(0xB7, 0, imm=0) + insn(0x95)


def _increment(map_fd: int, value_from_ctx: int | None) -> bytes:
    """array[0] += 1 (or += *(u64 *)(ctx + value_from_ctx)); ctx is in r6. 9 instructions."""
    add = insn(0xB7, 1, imm=1) if value_from_ctx is None else insn(0x79, 1, 6, value_from_ctx)
    return (
        insn(0x62, 10, off=-4, imm=0)  # *(u32 *)(r10 - 4) = 0
        + insn(0xBF, 2, 10)  # r2 = r10
        + insn(0x07, 2, imm=-4)  # r2 += -4
        + ld_map_fd(1, map_fd)
        + insn(0x85, imm=1)  # call bpf_map_lookup_elem
        + insn(0x15, 0, off=2, imm=0)  # if r0 == 0 goto +2
        + add
        + insn(0xDB, 0, 1, 0, 0)  # lock *(u64 *)(r0 + 0) += r1
    )


def counter_insns(map_fd: int, pid: int = 0, value_from_ctx: int | None = None) -> bytes:
    """Count hits (or sum a ctx field) into ``array[0]``, only from process ``pid`` when set."""
    body = _increment(map_fd, value_from_ctx)
    head = insn(0xBF, 6, 1)  # r6 = r1 (ctx)
    if pid:
        head += (
            insn(0x85, imm=14)  # call bpf_get_current_pid_tgid
            + insn(0x77, 0, imm=32)  # r0 >>= 32
            + insn(0x55, 0, off=len(body) // 8, imm=pid)  # if r0 != pid goto exit
        )
    return head + body + EXIT_0


def packet_counter_insns(
    map_fd: int, length: int, verdict: int, pkt_type: int | None = None
) -> bytes:
    """For socket filters and cgroup_skb: count packets of exactly ``length`` bytes
    (``__sk_buff->len``), and of ``pkt_type`` when given; return ``verdict``."""
    body = _increment(map_fd, None)
    skip = len(body) // 8
    type_check = b""
    if pkt_type is not None:
        type_check = insn(0x61, 0, 6, 4) + insn(0x55, 0, off=skip, imm=pkt_type)  # pkt_type
    return (
        insn(0xBF, 6, 1)
        + insn(0x61, 0, 6, 0)  # r0 = skb->len
        + insn(0x55, 0, off=skip + len(type_check) // 8, imm=length)
        + type_check
        + body
        + insn(0xB7, 0, imm=verdict)
        + insn(0x95)
    )


def xdp_udp_counter_insns(map_fd: int, port: int, action: int) -> bytes:
    """XDP: count IPv4 UDP packets to ``port`` and return ``action`` for them; pass the rest."""
    body = _increment(map_fd, None)
    tail = insn(0xB7, 0, imm=action) + insn(0x95)
    # Offsets in an Ethernet + IPv4 (no options) + UDP frame.
    checks = [
        insn(0x61, 2, 1, 0),  # r2 = ctx->data
        insn(0x61, 3, 1, 4),  # r3 = ctx->data_end
        insn(0xBF, 4, 2),  # r4 = r2
        insn(0x07, 4, imm=38),  # r4 += 38
        ("jgt", 4, 3),  # if r4 > r3 goto pass
        insn(0x71, 5, 2, 23),  # r5 = ip->protocol
        ("jne_imm", 5, 17),
        insn(0x69, 5, 2, 36),  # r5 = udp->dest (network order)
        ("jne_imm", 5, struct.unpack("<H", struct.pack(">H", port))[0]),
    ]
    n_checks = len(checks)
    out = b""
    for i, item in enumerate(checks):
        if isinstance(item, bytes):
            out += item
            continue
        # Jump to "pass", after the remaining checks, the counter and the action.
        skip = (n_checks - i - 1) + len(body) // 8 + 2
        op, dst, operand = item
        out += (
            insn(0x2D, dst, operand, off=skip)
            if op == "jgt"
            else insn(0x55, dst, off=skip, imm=operand)
        )
    xdp_pass = insn(0xB7, 0, imm=2) + insn(0x95)
    return out + body + tail + xdp_pass


def array_map() -> FD:
    return bpf.map_create(MapType.ARRAY, 4, 8, 1, name="bpfnb_test")


def read_slot(map_fd: FD) -> int:
    key, value = ct.c_uint32(0), ct.c_uint64()
    assert bpf.map_lookup(map_fd.fileno(), key, value)
    return value.value


def load(prog_type: int, insns: bytes, expected_attach_type: int = 0) -> FD:
    return bpf.prog_load(
        prog_type, insns, name="bpfnb_link_test", expected_attach_type=expected_attach_type
    )


__all__ = [
    "PT_REGS_AX",
    "PT_REGS_DI",
    "ProgType",
    "array_map",
    "counter_insns",
    "load",
    "packet_counter_insns",
    "read_slot",
    "xdp_udp_counter_insns",
]
