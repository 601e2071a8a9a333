"""A 100k-entry map from 3 engines of a local ipyparallel cluster, against 3 local reads.

The same cell (``BPF_HASH(plain, u32, u64, 100000)``, filled with 100,000 entries) is loaded:
- on each of 3 engines of a local cluster, read with one gathering
  ``ClusterMap.to_frame()`` (3 x 100,000 rows with ``host`` and ``engine`` columns);
- 3 times in this process, read with 3 ``Map.to_frame()`` calls one after the other.

From one run of this script, the median time of each (interleaved, so that load from elsewhere
hits both alike) and their ratio: what the cluster's transport costs over reading the maps
here. Needs the ``cluster`` extra. Run as root: ``.venv/bin/python benchmarks/cluster_gather.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import ipyparallel as ipp
import numpy as np

from bpfnb.bcc import compile as bcc_compile
from bpfnb.cells import CellSpec
from bpfnb.cluster import run_cell
from bpfnb.maps import Map

ENGINES = 3
ENTRIES = 100_000
RUNS = 11
PROGRAM = f"BPF_HASH(plain, u32, u64, {ENTRIES});\n"


def fill(m: Map) -> None:
    keys = np.arange(ENTRIES, dtype=np.uint32)
    m.update_batch(keys, keys.astype(np.uint64) * 7)


def fill_on_engine(key: str) -> int:
    # Runs on an engine: fill its copy of the map, as fill() does here.
    import numpy as np

    from bpfnb.cluster import engine

    m = engine._objects().objects[key].maps["plain"]
    keys = np.arange(100_000, dtype=np.uint32)
    m.update_batch(keys, keys.astype(np.uint64) * 7)
    return len(m)


fill_on_engine.__module__ = "__main__"  # sent by value: the engines need not import this script


def medians(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    cluster = ipp.Cluster(n=ENGINES, log_level=40)
    client = cluster.start_and_connect_sync()
    local = [bcc_compile(PROGRAM, name=f"local{i}") for i in range(ENGINES)]
    try:
        client.wait_for_engines(ENGINES, timeout=120)
        remote = run_cell(CellSpec(name="gathered", source=PROGRAM), client)
        assert client[:].apply_sync(fill_on_engine, remote.key) == [ENTRIES] * ENGINES
        for obj in local:
            fill(obj.maps["plain"])
        gathered = remote.maps["plain"]
        assert len(gathered.to_frame()) == ENGINES * ENTRIES

        def three_local() -> None:
            for obj in local:
                obj.maps["plain"].to_frame()

        times = medians(
            {"3 local Map.to_frame()": three_local, "ClusterMap.to_frame()": gathered.to_frame},
            RUNS,
        )
        print(f"\nplain: {ENTRIES:,} entries (u32 -> u64) on each of {ENGINES} engines")
        for what, seconds in times.items():
            print(f"  {what:<30}{seconds * 1000:9.1f} ms")
        ratio = times["ClusterMap.to_frame()"] / times["3 local Map.to_frame()"]
        print(f"  {'gathered / local':<30}{ratio:9.2f}x")
        remote.close()
    finally:
        for obj in local:
            obj.close()
        client.close()
        cluster.stop_cluster_sync()


if __name__ == "__main__":
    main()
