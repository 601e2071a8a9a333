"""Loading ELF objects: bpfnb's loader against bcc and against libbpf (bpftool).

Starting a tracepoint counter, on the same program:
- bcc: ``bcc.BPF(text=...)`` compiles the C with libbcc, loads and attaches it;
- bpfnb ELF, object prebuilt: ``bpfnb.load_elf("counter.o")`` reads the clang-built object,
  creates its maps, loads and attaches it (the usual case: the object is built once);
- bpfnb ELF, with clang: ``clang -target bpf`` first, then the same load.
Each side then counts the same 1,000 ``getppid()`` calls (checked) and is torn down.

Loading a CO-RE object, an execsnoop-like tool built here from ``vmlinux.h`` and libbpf's
``bpf_core_read.h`` (its field reads are relocated against the running kernel's BTF):
- ``bpftool prog loadall`` (libbpf), a process of its own that parses the kernel's BTF;
- ``bpfnb.elf.load`` first in a fresh Python process (imports done): it parses the kernel's
  BTF too;
- ``bpfnb.elf.load`` again in a process that has parsed it (as a notebook does after its
  first load).
Both loaders must give the programs the same tags (the same instructions).

Prints the median of several runs of each from one run of this script, and the ratios.
Run as root: ``.venv/bin/python benchmarks/elf_load.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bpfnb
from bpfnb.bcc import import_bcc
from bpfnb.elf import load
from bpfnb.elf.compiler import clang_command, elf_cflags

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
# Traces exec(): the arguments in a hash map on entry, an event out on exit, the parent's pid
# read through task->real_parent with CO-RE.
CORE_PROGRAM = """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define ARGS 20
#define ARGSIZE 128
#define TOTAL (ARGS * ARGSIZE)

struct exec_event {
    int pid, ppid, retval, args_count;
    unsigned int uid, args_size;
    char comm[16];
    char args[TOTAL];
};

const volatile bool ignore_failed = true;
const volatile uid_t target_uid = -1;
const volatile int max_args = ARGS;
static const struct exec_event empty;

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, pid_t);
    __type(value, struct exec_event);
} execs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(u32));
    __uint(value_size, sizeof(u32));
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_execve")
int on_execve(struct trace_event_raw_sys_enter *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    pid_t pid = id >> 32;
    u32 uid = (u32)bpf_get_current_uid_gid();
    const char **argv = (const char **)ctx->args[1];
    const char *arg;
    struct exec_event *e;
    int i, n;

    if (target_uid != (uid_t)-1 && target_uid != uid)
        return 0;
    if (bpf_map_update_elem(&execs, &pid, &empty, BPF_NOEXIST))
        return 0;
    e = bpf_map_lookup_elem(&execs, &pid);
    if (!e)
        return 0;
    e->pid = (u32)id;
    e->uid = uid;
    e->ppid = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), real_parent, tgid);
    n = bpf_probe_read_user_str(e->args, ARGSIZE, (const char *)ctx->args[0]);
    if (n <= ARGSIZE)
        e->args_size = n;
    for (i = 1; i < ARGS && i < max_args; i++) {
        bpf_probe_read_user(&arg, sizeof(arg), &argv[i]);
        if (!arg || e->args_size > TOTAL - ARGSIZE)
            return 0;
        n = bpf_probe_read_user_str(&e->args[e->args_size], ARGSIZE, arg);
        if (n > ARGSIZE)
            return 0;
        e->args_count++;
        e->args_size += n;
    }
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int on_execve_exit(struct trace_event_raw_sys_exit *ctx)
{
    pid_t pid = bpf_get_current_pid_tgid() >> 32;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct exec_event *e = bpf_map_lookup_elem(&execs, &pid);
    unsigned int size;

    if (!e)
        return 0;
    if (ignore_failed && ctx->ret < 0)
        goto out;
    e->retval = ctx->ret;
    e->ppid = BPF_CORE_READ(task, real_parent, tgid);
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    size = sizeof(*e) - TOTAL + e->args_size;
    if (size <= sizeof(*e))
        bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, e, size);
out:
    bpf_map_delete_elem(&execs, &pid);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""
# Run in a fresh interpreter: the time of its first load, imports excluded.
FIRST_LOAD = """
import sys, time
from bpfnb.elf import load
start = time.perf_counter()
obj = load(sys.argv[1], pin=False)
print(time.perf_counter() - start)
obj.close()
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


def compile_core_object(directory: Path) -> Path:
    """The execsnoop-like object, built against the running kernel's ``vmlinux.h`` (which
    bpfnb generates with bpftool and caches outside the source tree)."""
    source, obj = directory / "execsnoop.bpf.c", directory / "execsnoop.bpf.o"
    source.write_text(CORE_PROGRAM)
    subprocess.run(clang_command(str(source), str(obj), elf_cflags(CORE_PROGRAM)), check=True)
    return obj


def bpftool_tags(pinned: Path) -> dict[str, str]:
    tags = {}
    for prog in pinned.iterdir():
        show = ["bpftool", "prog", "show", "pinned", str(prog), "--json"]
        tags[prog.name] = json.loads(subprocess.run(show, capture_output=True).stdout)["tag"]
    return tags


def time_bpftool(obj: Path, tags: dict[str, str] | None = None) -> float:
    pinned = Path(f"/sys/fs/bpf/bpfnb-bench-{os.getpid()}")
    start = time.perf_counter()
    subprocess.run(["bpftool", "prog", "loadall", str(obj), str(pinned)], check=True)
    elapsed = time.perf_counter() - start
    if tags is not None:
        tags.update(bpftool_tags(pinned))
    shutil.rmtree(pinned)
    return elapsed


def time_first_load(obj: Path) -> float:
    out = subprocess.run([sys.executable, "-c", FIRST_LOAD, str(obj)], capture_output=True)
    if out.returncode:
        raise RuntimeError(out.stderr.decode())
    return float(out.stdout)


def time_load(obj: Path, tags: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    loaded = load(obj, pin=False)
    elapsed = time.perf_counter() - start
    if tags is not None:
        tags.update({name: prog.tag for name, prog in loaded.programs.items()})
    loaded.close()
    return elapsed


def core_load() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        obj = compile_core_object(Path(tmp))
        theirs: dict[str, str] = {}
        ours: dict[str, str] = {}
        time_bpftool(obj, theirs), time_load(obj, ours)  # warm caches; the same programs?
        assert ours == theirs, f"bpftool loaded {theirs}, bpfnb {ours}"
        relocations = sum(len(p.core_relocations) for p in bpfnb.elf.read(obj).programs.values())
        bpftool = statistics.median(time_bpftool(obj) for _ in range(RUNS))
        first = statistics.median(time_first_load(obj) for _ in range(RUNS))
        again = statistics.median(time_load(obj) for _ in range(RUNS))
    print(
        f"loading a CO-RE object ({len(ours)} programs, {relocations} CO-RE relocations; "
        f"median of {RUNS}; the same tags as libbpf's):"
    )
    print(f"  bpftool prog loadall (libbpf)         {bpftool * 1000:8.1f} ms   1.00x")
    print(
        f"  bpfnb.elf.load, first in a process    {first * 1000:8.1f} ms   {first / bpftool:.2f}x"
    )
    print(
        f"  bpfnb.elf.load, kernel BTF parsed     {again * 1000:8.1f} ms   {again / bpftool:.2f}x"
    )


def counter_start() -> None:
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


def main() -> None:
    counter_start()
    print()
    core_load()


if __name__ == "__main__":
    main()
