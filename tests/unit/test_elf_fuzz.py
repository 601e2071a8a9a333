"""Fuzzing the ELF reader: mutated fixtures (bit flips, truncations, corrupted section headers,
symbols, relocations, code, map definitions and BTF) may only ever raise ``ElfError``, and it
always names a section and an offset.

The quick run here checks a few hundred cases; ``benchmarks/fuzz_elf.py`` runs 10,000+ with the
same strategy.
"""

from __future__ import annotations

import contextlib
import signal
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bpfnb.elf import read
from bpfnb.elf.core import apply_core_relocations
from bpfnb.elf.kconfig import kconfig_data
from bpfnb.errors import ElfError, KernelFeatureError

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

FIXTURES = [
    ("elf_globals", ()),
    ("elf_btf_maps", ()),
    ("elf_gobpf_dummy", ()),
    ("elf_gobpf_dummy", ("-g0",)),
    ("elf_samples_maps", ("-DSEVEN_FIELDS",)),
    ("elf_bitfields", ()),
    ("elf_core", ()),
    ("elf_callback", ()),
    ("elf_kconfig", ()),
]

# Values that break parsers: zero, sign edges, sizes near and past any file.
INTERESTING = [0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFF, 1 << 32, 1 << 63, (1 << 64) - 1]  # fmt: skip


def regions(data: bytes) -> dict[str, list[tuple[int, int]]]:
    """Byte ranges of a clean object worth corrupting, by kind."""
    shoff = struct.unpack_from("<Q", data, 40)[0]
    shnum = struct.unpack_from("<H", data, 60)[0]
    shstrndx = struct.unpack_from("<H", data, 62)[0]
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + 64 * i) for i in range(shnum)]
    names_at = headers[shstrndx][4]

    def name(h: tuple[int, ...]) -> str:
        start = names_at + h[0]
        return data[start : data.index(b"\0", start)].decode()

    out: dict[str, list[tuple[int, int]]] = {
        "elf_header": [(0, 64)],
        "section_headers": [(shoff + 64 * i, 64) for i in range(shnum)],
    }
    for h in headers:
        n, sh_type, flags, offset, size = name(h), h[1], h[2], h[4], h[5]
        if sh_type == 8 or size == 0:  # NOBITS
            continue
        if sh_type == 2:
            kind = "symbols"
        elif sh_type == 9:
            kind = "relocations"
        elif n in (".BTF", ".BTF.ext"):
            kind = "btf"
        elif flags & 0x4:
            kind = "code"
        elif n.startswith(("maps", ".maps")):
            kind = "maps"
        elif n.startswith((".rodata", ".data", "license", "version")):
            kind = "data"
        else:
            continue
        out.setdefault(kind, []).append((offset, size))
    return out


class Case:
    """A mutated object; its repr says how it was made (not its bytes), to keep reports short."""

    def __init__(self, data: bytes, steps: list[str]) -> None:
        self.data = data
        self.steps = steps

    def __repr__(self) -> str:
        return f"Case({'; '.join(self.steps)})"


@st.composite
def mutations(
    draw: Any, objects: list[tuple[str, bytes, dict[str, list[tuple[int, int]]]]]
) -> Case:
    """One mutated object: a fixture with one to three corruptions."""
    name, clean, where = draw(st.sampled_from(objects))
    data = bytearray(clean)
    steps = [name]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["bitflip", "truncate", *sorted(where)]))
        if kind == "bitflip":
            for _ in range(draw(st.integers(1, 8))):
                bit = draw(st.integers(0, len(data) * 8 - 1))
                data[bit // 8] ^= 1 << (bit % 8)
                steps.append(f"flip bit {bit}")
        elif kind == "truncate":
            data = data[: draw(st.integers(0, len(data) - 1))]
            steps.append(f"truncate to {len(data)}")
        else:
            start, size = draw(st.sampled_from(where[kind]))
            width = draw(st.sampled_from([1, 2, 4, 8]))
            at = start + draw(st.integers(0, max(size - width, 0)))
            if draw(st.booleans()):
                at -= at % width  # fields are aligned: hit them exactly half of the time
            value = draw(st.sampled_from(INTERESTING) | st.integers(0, (1 << (8 * width)) - 1))
            raw = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
            data[at : at + width] = raw
            steps.append(f"{kind}: {width} bytes at {at:#x} = {value:#x}")
        if not data:
            break
    return Case(bytes(data), steps)


def exercise(data: bytes) -> str:
    """Read ``data`` and use everything the spec offers; returns "ok" or the ElfError's section."""
    try:
        spec = read(data)
        for m in spec.maps.values():
            _ = (m.key_layout, m.value_layout, m.key_type_name, m.value_type_name, m.type_name)
        for prog in spec.programs.values():
            prog.disassemble()
            if prog.core_relocations and spec.btf is not None:
                apply_core_relocations(
                    prog.instructions, prog.core_relocations, spec.btf, spec.btf, prog.name
                )
        dict(spec.constants)
        kconfig = spec.maps.get(".kconfig")
        if kconfig is not None and spec.btf is not None:
            config = {var.name: "1" for var in kconfig.variables}
            # A value that does not fit a (corrupted) type is reported as KernelFeatureError.
            with contextlib.suppress(KernelFeatureError):
                kconfig_data(kconfig.variables, {}, spec.btf, kconfig.value_size, config, "6.1")
        for info in spec.sections:
            _ = info.role
    except ElfError as err:
        # The promise: every error names the section and the offset.
        assert err.section and err.offset is not None, f"ElfError without a place: {err}"
        return f"ElfError in {err.section}"
    return "ok"


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def alarm(*_: object) -> None:
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def load_fixtures(build: Callable[..., Any]) -> list[tuple[str, bytes, dict[str, Any]]]:
    objects = []
    for name, flags in FIXTURES:
        data = build(name, *flags).read_bytes()
        objects.append((" ".join([name, *flags]), data, regions(data)))
    return objects


def run(objects: list[Any], examples: int, outcomes: dict[str, int], seed: int = 0) -> float:
    """Check ``examples`` mutated objects; count outcomes. Any other exception fails.

    Returns the longest time one case took, in seconds.
    """
    slowest = [0.0]

    @hypothesis.settings(
        max_examples=examples,
        derandomize=seed == 0,
        database=None,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )
    @hypothesis.given(mutations(objects))
    def check(case: Case) -> None:
        start = time.perf_counter()
        with time_limit(5):
            outcome = exercise(case.data)
        slowest[0] = max(slowest[0], time.perf_counter() - start)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    if seed:
        check = hypothesis.seed(seed)(check)
    check()
    return slowest[0]


def test_clean_fixtures_read(clang_build):
    assert all(exercise(data) == "ok" for _, data, _ in load_fixtures(clang_build))


def test_mutated_objects_only_raise_elf_error(clang_build):
    outcomes: dict[str, int] = {}
    run(load_fixtures(clang_build), 400, outcomes)
    assert sum(outcomes.values()) >= 400
    # The mutations reach past the header checks: some objects are rejected deep inside.
    assert len(outcomes) > 5, outcomes
