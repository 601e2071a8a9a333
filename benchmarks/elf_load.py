"""Starting a tracepoint counter: bpfnb's ELF loader against bcc, on the same program.

- bcc: ``bcc.BPF(text=...)`` compiles the C with libbcc, loads and attaches it;
- bpfnb ELF, object prebuilt: ``bpfnb.load_elf("counter.o")`` reads the clang-built object,
  creates its maps, loads and attaches it (the usual case: the object is built once);
- bpfnb ELF, with clang: ``clang -target bpf`` first, then the same load.

Each side then counts the same 1,000 ``getppid()`` calls (checked) and is torn down. Prints the
median of several runs of each from one run of this script, and the ratios to bcc.
Run as root: ``.venv/bin/python benchmarks/elf_load.py``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import bpfnb
from bpfnb.bcc import import_bcc

BCC_PROGRAM = """
BPF_HASH(calls, u32, u64, 1024);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    calls.increment(pid);
    return 0;
}
"""
ELF_PROGRAM = """
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
typedef unsigned int u32;
typedef unsigned long long u64;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value,
                                   u64 flags) = (void *)2;
static u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;

struct {
    __uint(type, 1);
    __uint(max_entries, 1024);
    __type(key, u32);
    __type(value, u64);
} calls SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int count(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *value = bpf_map_lookup_elem(&calls, &pid);

    if (value)
        __sync_fetch_and_add(value, 1);
    else
        bpf_map_update_elem(&calls, &pid, &one, 1);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""
CALLS = 1000
RUNS = 7


def workload() -> None:
    for _ in range(CALLS):
        os.getppid()


def time_bcc() -> float:
    bcc = import_bcc()
    start = time.perf_counter()
    program = bcc.BPF(text=BCC_PROGRAM)
    try:
        ready = time.perf_counter() - start
        workload()
        calls = program["calls"]
        assert calls[calls.Key(os.getpid())].value == CALLS
    finally:
        program.cleanup()
    return ready


def compile_object(directory: Path) -> Path:
    source, obj = directory / "counter.c", directory / "counter.o"
    source.write_text(ELF_PROGRAM)
    cmd = ["clang", "-O2", "-g", "-target", "bpf", "-c", str(source), "-o", str(obj)]
    subprocess.run(cmd, check=True)
    return obj


def time_elf(directory: Path, with_clang: bool) -> float:
    start = time.perf_counter()
    obj_path = compile_object(directory) if with_clang else directory / "counter.o"
    obj = bpfnb.load_elf(obj_path)
    try:
        ready = time.perf_counter() - start
        workload()
        assert obj.maps["calls"][os.getpid()] == CALLS
    finally:
        obj.close()
    return ready


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        compile_object(directory)
        time_bcc(), time_elf(directory, False)  # warm up caches and imports
        bcc = statistics.median(time_bcc() for _ in range(RUNS))
        prebuilt = statistics.median(time_elf(directory, False) for _ in range(RUNS))
        with_clang = statistics.median(time_elf(directory, True) for _ in range(RUNS))
    print(f"time to a running tracepoint counter (median of {RUNS}; each counted {CALLS} calls):")
    print(f"  bcc.BPF(text=...)               {bcc * 1000:8.1f} ms   1.00x")
    print(f"  bpfnb.load_elf(prebuilt object) {prebuilt * 1000:8.1f} ms   {prebuilt / bcc:.3f}x")
    print(
        f"  clang + bpfnb.load_elf          {with_clang * 1000:8.1f} ms   {with_clang / bcc:.3f}x"
    )


if __name__ == "__main__":
    main()
