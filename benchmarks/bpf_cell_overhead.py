"""The cost of a ``%%bpf`` cell against a bare ``bcc.BPF(text=...)`` on the same program.

Both sides compile, load and attach the same tracepoint counter, then detach and free it.
Prints the median of several runs of each, from one run of this script, and their ratio.
Run as root: ``.venv/bin/python benchmarks/bpf_cell_overhead.py``.
"""

from __future__ import annotations

import os
import statistics
import time

from IPython.core.interactiveshell import InteractiveShell

from bpfnb.bcc import import_bcc

PROGRAM = """
BPF_HASH(calls, u32, u64);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    calls.increment(pid);
    return 0;
}
"""
RUNS = 7


def time_bare_bcc() -> float:
    bcc = import_bcc()
    start = time.perf_counter()
    program = bcc.BPF(text=PROGRAM, cflags=[f"-DPID={os.getpid()}"])
    program.cleanup()
    return time.perf_counter() - start


def time_bpf_cell(shell: InteractiveShell) -> float:
    start = time.perf_counter()
    shell.run_cell_magic("bpf", "bench -D PID={os.getpid()}", PROGRAM)
    shell.run_line_magic("bpf_close", "bench")
    return time.perf_counter() - start


def main() -> None:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bpfnb")
    shell.run_cell("import os")
    time_bare_bcc()  # warm both paths (libbcc, kernel headers in the page cache)
    time_bpf_cell(shell)
    bare, cell = [], []
    for _ in range(RUNS):  # interleaved, so drift affects both alike
        bare.append(time_bare_bcc())
        cell.append(time_bpf_cell(shell))
    bare_median, cell_median = statistics.median(bare), statistics.median(cell)
    print(f"{'runs':<28}{RUNS}")
    print(f"{'bcc.BPF(text=...) median':<28}{bare_median * 1000:8.1f} ms")
    print(f"{'%%bpf cell median':<28}{cell_median * 1000:8.1f} ms")
    print(f"{'ratio %%bpf / bcc':<28}{cell_median / bare_median:8.2f}x")


if __name__ == "__main__":
    main()
