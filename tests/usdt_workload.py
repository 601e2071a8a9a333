"""A C program with USDT probes (``<sys/sdt.h>``), built by the tests that need it.

``bpfnbtest:tick`` has two sites (a function and the loop), no semaphore, one argument;
``bpfnbtest:gated`` has a semaphore and fires only while it is set; ``bpfnbtest:args`` fires
once with five arguments of different widths and signs. ``workload N [wait [a b c d]]`` runs N
iterations (after reading a line from stdin when ``wait`` is given) and prints how many times
the gated probe fired and the semaphore's final value.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import need

__all__ = [
    "ARGS",
    "NOP",
    "SDT_HEADER",
    "build_workload",
    "byte_at",
    "readelf_notes",
    "start_waiting",
]

SDT_HEADER = Path("/usr/include/x86_64-linux-gnu/sys/sdt.h")
NOP = 0x90  # what <sys/sdt.h> puts at each probe site

MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>

long gated_loop(long n);
unsigned short gated_semaphore(void);

__attribute__((noinline)) static void tick_in_function(long i) {
    STAP_PROBE1(bpfnbtest, tick, i);
    __asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0;
    if (argc > 2) {
        char line[16];
        if (!fgets(line, sizeof line, stdin))
            return 1;
    }
    int a = argc > 3 ? (int)atol(argv[3]) : -5;
    unsigned char b = argc > 4 ? (unsigned char)atol(argv[4]) : 200;
    long c = argc > 5 ? atol(argv[5]) : 3000000000L;
    short d = argc > 6 ? (short)atol(argv[6]) : -300;
    for (long i = 0; i < n; i++) {
        tick_in_function(i);
        STAP_PROBE1(bpfnbtest, tick, -i);
    }
    long gated = gated_loop(n);
    STAP_PROBE5(bpfnbtest, args, a, b, c, d, 42);
    printf("%ld %u\n", gated, gated_semaphore());
    return 0;
}
"""

GATED = r"""
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

unsigned short bpfnbtest_gated_semaphore __attribute__((unused, section(".probes")));

long gated_loop(long n) {
    long fired = 0;
    for (long i = 0; i < n; i++) {
        if (bpfnbtest_gated_semaphore) {
            STAP_PROBE1(bpfnbtest, gated, i);
            fired++;
        }
    }
    return fired;
}

unsigned short gated_semaphore(void) { return bpfnbtest_gated_semaphore; }
"""

#: The ``args`` probe's default arguments, as the workload passes them.
ARGS = (-5, 200, 3000000000, -300, 42)


def expected_ticks(n: int) -> dict[int, int]:
    """What a ``tick`` counter keyed by value holds after ``n`` iterations: site one passes i,
    site two -i, for i in 0..n-1, so 0 twice and every other value once."""
    expected = {0: 2}
    for i in range(1, n):
        expected[i] = expected[-i] = 1
    return expected


def counted_ticks(obj: Any) -> dict[int, int]:
    """The ``ticks`` map of ``obj`` as {value: count}."""
    frame = obj.maps["ticks"].to_frame()
    return dict(zip(frame["key"].tolist(), frame["value"].tolist()))


def build_workload(directory: Path, *flags: str) -> Path:
    """Compile the workload into ``directory`` with ``flags`` (e.g. ``-O2``, ``-no-pie``)."""
    compiler = shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")
    need(compiler is not None, "no C compiler (gcc, cc or clang) to build the USDT workload")
    need(
        SDT_HEADER.exists() or Path("/usr/include/sys/sdt.h").exists(),
        "<sys/sdt.h> is missing (install systemtap-sdt-dev)",
    )
    assert compiler is not None
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.c").write_text(MAIN)
    (directory / "gated.c").write_text(GATED)
    suffix = "".join(f.strip("-").replace("=", "") for f in flags) or "default"
    out = directory / f"workload-{suffix}"
    cmd = [compiler, *flags, "-o", str(out), str(directory / "main.c"), str(directory / "gated.c")]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


def start_waiting(path: Path, n: int, *args: int) -> subprocess.Popen[str]:
    """Start the workload for ``n`` iterations, waiting for a line on stdin before it runs.

    Returns once the kernel has mapped the program: the exec that ``Popen`` waits for closes
    its pipe before the new program's segments are mapped.
    """
    argv = [str(path), str(n), "wait", *map(str, args)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{proc.pid}/maps") as maps:
            if str(path) in maps.read():
                return proc
        time.sleep(0.005)
    proc.kill()
    raise TimeoutError(f"{path} was not mapped within 10 s")


def readelf_notes(path: Path) -> list[tuple[str, str, int, int, str]]:
    """(provider, name, location, semaphore, arguments) of each note, as binutils reads them."""
    need(shutil.which("readelf") is not None, "binutils' readelf is not installed")
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True).stdout
    pattern = re.compile(
        r"Provider: (\S+)\s+Name: (\S+)\s+Location: (0x[0-9a-f]+), Base: 0x[0-9a-f]+, "
        r"Semaphore: (0x[0-9a-f]+)\s+Arguments: ?([^\n]*)"
    )
    return [
        (p, n, int(loc, 16), int(sem, 16), a.strip()) for p, n, loc, sem, a in pattern.findall(out)
    ]


def byte_at(path: Path, offset: int, size: int = 1) -> bytes:
    """``size`` bytes of ``path`` at file offset ``offset``."""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)
