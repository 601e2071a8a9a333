"""Print what an ELF program writes with bpf_printk (gobpf's tracepipe example).

    sudo python examples/elf/tracepipe.py [--duration SECONDS]

A tracepoint on sched_process_exec prints each new program; this script follows
/sys/kernel/tracing/trace_pipe (shared by every tracer on the machine). Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import time
from pathlib import Path

from bpfnb.elf import load_source
from bpfnb.sys import tracefs

SOURCE = Path(__file__).with_suffix(".bpf.c")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    args = parser.parse_args()
    root = tracefs.mount_point()
    if root is None:
        raise SystemExit("tracefs is not mounted: run `python -m bpfnb doctor --fix`")
    pipe = os.open(os.path.join(root, "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        with load_source(SOURCE.read_text(), name="tracepipe"):
            print("following the trace pipe (run some programs)", flush=True)
            subprocess.run(["true"], check=False)  # one exec of our own to show
            deadline = None if args.duration is None else time.monotonic() + args.duration
            try:
                while deadline is None or time.monotonic() < deadline:
                    if not select.select([pipe], [], [], 0.2)[0]:
                        continue
                    try:
                        data = os.read(pipe, 65536)
                    except BlockingIOError:
                        continue
                    for line in data.decode(errors="replace").splitlines():
                        if "exec: " in line:
                            print(line.split("bpf_trace_printk: ")[-1].strip(), flush=True)
            except KeyboardInterrupt:
                pass
    finally:
        os.close(pipe)
    print("detached")


if __name__ == "__main__":
    main()
