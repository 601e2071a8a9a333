"""Print what an ELF program writes with bpf_printk (gobpf's tracepipe example).

    sudo python examples/elf/tracepipe.py [--duration SECONDS]

A tracepoint on sched_process_exec prints each new program; this script follows the
bpf_trace_printk lines written from its start on (a tracefs instance of its own, so other
readers of trace_pipe lose nothing). Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

from bpfnb.elf import load_source
from bpfnb.sys.tracefs import TracePipe

SOURCE = Path(__file__).with_suffix(".bpf.c")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    args = parser.parse_args()
    with TracePipe() as pipe, load_source(SOURCE.read_text(), name="tracepipe"):
        print("following bpf_trace_printk output (run some programs)", flush=True)
        subprocess.run(["true"], check=False)  # one exec of our own to show
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while deadline is None or time.monotonic() < deadline:
                for line in pipe.read_lines(timeout=0.2):
                    if "exec: " in line:
                        print(line.split("bpf_trace_printk: ")[-1].strip(), flush=True)
        except KeyboardInterrupt:
            pass
    print("detached")


if __name__ == "__main__":
    main()
