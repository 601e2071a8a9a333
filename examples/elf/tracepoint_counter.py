"""Count openat() calls per process with an ELF tracepoint program (gobpf's tracepoint example).

    sudo python examples/elf/tracepoint_counter.py [--duration SECONDS]

The C source next to this script is compiled with clang, loaded by bpfnb's ELF loader and
attached by its section name. Every second the top processes are printed; Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bpfnb.elf import load_source

SOURCE = Path(__file__).with_suffix(".bpf.c")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    args = parser.parse_args()
    with load_source(SOURCE.read_text(), name="tracepoint_counter") as obj:
        print(f"counting openat() calls: {obj.programs['count_openat'].attach_points}")
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(1)
                frame = obj.maps["opens"].to_frame()
                if len(frame):
                    top = frame.sort_values("value", ascending=False).head(5)
                    print(top.to_string(index=False), end="\n\n", flush=True)
        except KeyboardInterrupt:
            pass
    print("detached")


if __name__ == "__main__":
    main()
