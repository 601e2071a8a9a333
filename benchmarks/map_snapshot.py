"""A 100k-entry map into a DataFrame: bcc's per-key and batch reads against ``Map.to_frame()``.

Two maps, filled with 100,000 entries each:
- ``plain``: ``u32 -> u64``;
- ``tasks``: ``struct {u32 pid; char comm[16]} -> struct {u64 count; u64 bytes}``.

For each, from one run of this script, the median time of:
- bcc ``items()`` into a DataFrame (a syscall and ctypes objects per entry);
- bcc ``items_lookup_batch()`` into a DataFrame (batch syscalls, ctypes objects per entry);
- a raw ``BPF_MAP_LOOKUP_BATCH`` into preallocated numpy arrays (no DataFrame: the floor);
- ``Map.to_frame()``;
and the ratios. Run as root: ``.venv/bin/python benchmarks/map_snapshot.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bpfnb.bcc import from_bcc_table, import_bcc
from bpfnb.maps import Map
from bpfnb.sys import bpf

ENTRIES = 100_000
SLOW_RUNS = 5  # bcc items(): about a second each
FAST_RUNS = 21

PROGRAM = f"""
struct key_t {{ u32 pid; char comm[16]; }};
struct val_t {{ u64 count; u64 bytes; }};
BPF_HASH(plain, u32, u64, {ENTRIES});
BPF_HASH(tasks, struct key_t, struct val_t, {ENTRIES});
"""


def fill(m: Map) -> None:
    keys = np.zeros(ENTRIES, dtype=m.key_type.dtype)
    values = np.zeros(ENTRIES, dtype=m.value_type.dtype)
    if keys.dtype.names:
        keys["pid"] = np.arange(ENTRIES)
        keys["comm"] = [f"task-{i % 977}".encode() for i in range(ENTRIES)]
        values["count"], values["bytes"] = np.arange(ENTRIES), np.arange(ENTRIES) * 4096
    else:
        keys[:] = np.arange(ENTRIES)
        values[:] = np.arange(ENTRIES) * 7
    m.update_batch(keys, values)
    assert len(m) == ENTRIES


def bcc_rows(pairs: Any, struct: bool) -> pd.DataFrame:
    if struct:
        return pd.DataFrame(
            [(k.pid, k.comm.decode(), v.count, v.bytes) for k, v in pairs],
            columns=["pid", "comm", "count", "bytes"],
        )
    # items() yields ctypes scalars, items_lookup_batch() plain ints.
    return pd.DataFrame(
        [(getattr(k, "value", k), getattr(v, "value", v)) for k, v in pairs],
        columns=["key", "value"],
    )


def raw_batch(m: Map) -> int:
    # The floor: the batch syscalls straight into numpy arrays sized for the whole map.
    keys = np.empty(m.max_entries, dtype=m.key_type.dtype)
    values = np.empty(m.max_entries, dtype=m.value_type.dtype)
    token_in, token_out = None, np.zeros(8, np.uint8)
    filled = 0
    while True:
        result = bpf.map_lookup_batch(
            m.fd, token_in, token_out, keys[filled:], values[filled:], m.max_entries - filled
        )
        filled += result.count
        if result.done:
            return filled
        token_in, token_out = token_out, np.zeros(8, np.uint8)


def medians(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    # Round-robin, so that load from elsewhere on the machine hits every method alike.
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def bench(table: Any, m: Map) -> dict[str, float]:
    struct = bool(m.key_type.dtype.names)
    assert len(m.to_frame()) == ENTRIES == len(bcc_rows(table.items_lookup_batch(), struct))
    assert raw_batch(m) == ENTRIES
    slow = medians({"bcc items()": lambda: bcc_rows(table.items(), struct)}, SLOW_RUNS)
    fast = medians(
        {
            "bcc items_lookup_batch()": lambda: bcc_rows(table.items_lookup_batch(), struct),
            "raw batch syscall, numpy": lambda: raw_batch(m),
            "Map.to_frame()": m.to_frame,
        },
        FAST_RUNS,
    )
    return slow | fast


def main() -> None:
    program = import_bcc().BPF(text=PROGRAM)
    try:
        for name, label in (("plain", "u32 -> u64"), ("tasks", "{pid, comm} -> {count, bytes}")):
            table = program[name.encode()]
            m = from_bcc_table(table)
            fill(m)
            times = bench(table, m)
            print(f"\n{name}: {ENTRIES:,} entries, {label}")
            for what, seconds in times.items():
                print(f"  {what:<30}{seconds * 1000:9.1f} ms")
            ours = times["Map.to_frame()"]
            print(f"  {'bcc items() / to_frame()':<30}{times['bcc items()'] / ours:9.1f}x")
            batch = times["bcc items_lookup_batch()"]
            print(f"  {'bcc batch / to_frame()':<30}{batch / ours:9.1f}x")
            floor = times["raw batch syscall, numpy"]
            print(f"  {'to_frame() / raw batch':<30}{ours / floor:9.2f}x")
    finally:
        program.cleanup()


if __name__ == "__main__":
    main()
