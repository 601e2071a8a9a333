"""The eBPF disassembler."""

from __future__ import annotations

import struct

from bpfnb.elf import read
from bpfnb.elf.asm import HELPERS, disassemble_bytes


def insn(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", opcode, src << 4 | dst, off, imm)


def test_instruction_forms():
    code = b"".join(
        [
            insn(0xB7, 1, imm=5),  # r1 = 5
            insn(0xBF, 2, 10),  # r2 = r10
            insn(0x07, 2, imm=-8),  # r2 += -8
            insn(0x61, 3, 1, off=16),  # r3 = *(u32 *)(r1 + 16)
            insn(0x7B, 10, 3, off=-8),  # *(u64 *)(r10 - 8) = r3
            insn(0x62, 10, off=-4, imm=9),  # *(u32 *)(r10 - 4) = 9
            insn(0x15, 3, off=3, imm=0),  # if r3 == 0 goto +3
            insn(0x2D, 1, 2, off=1),  # if r1 > r2 goto +1
            insn(0x85, imm=14),  # call get_current_pid_tgid
            insn(0xDC, 1, imm=16),  # r1 = be16 r1
            insn(0x18, 1, imm=0x09ABCDEF),  # r1 = 0x123456709abcdef ll
            insn(0, imm=0x1234567),
            insn(0xC3, 1, 2, imm=0x01),  # fetch add (32-bit)
            insn(0x95),  # exit
        ]
    )
    text = disassemble_bytes(code, {0: "main"})
    lines = [line.strip() for line in text.splitlines()]
    assert lines == [
        "main:",
        "0: r1 = 5",
        "1: r2 = r10",
        "2: r2 += -8",
        "3: r3 = *(u32 *)(r1 + 16)",
        "4: *(u64 *)(r10 - 8) = r3",
        "5: *(u32 *)(r10 - 4) = 9",
        "6: if r3 == 0 goto L1",
        "7: if r1 > r2 goto L0",
        "8: call bpf_get_current_pid_tgid",
        "L0:",
        "9: r1 = be16 r1",
        "L1:",
        "10: r1 = 0x123456709abcdef ll",
        "12: w2 = atomic_fetch_add(*(u32 *)(r1 + 0), w2)",
        "13: exit",
    ]


def test_helper_table_matches_the_uapi_numbers():
    assert HELPERS[1] == "map_lookup_elem" and HELPERS[14] == "get_current_pid_tgid"
    assert HELPERS[25] == "perf_event_output" and HELPERS[130] == "ringbuf_output"
    assert HELPERS[209] == "user_ringbuf_drain"


def test_program_shows_maps_helpers_subprograms_and_source(clang_build):
    prog = read(clang_build("elf_globals")).programs["filter"]
    text = prog.disassemble()
    assert "r2 = &.bss[0] ll" in text
    assert "r1 = &.rodata[0] ll" in text
    assert "r1 = map[calls] ll" in text
    assert "call bpf_map_lookup_elem" in text
    assert "call bump" in text and "call scaled" in text
    assert "\nbump:\n" in text and "\nscaled:\n" in text
    assert "; return verdict;" in text
    html = text._repr_html_()
    assert "<span" in html and "map_lookup_elem" in html


def test_garbage_never_raises():
    text = disassemble_bytes(bytes(range(256)) * 2)
    assert text.count("\n") > 10
