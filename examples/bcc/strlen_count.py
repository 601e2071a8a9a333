"""Count the strings passed to libc's strlen(), with a uprobe (gobpf's strlen_count example).

    sudo python examples/bcc/strlen_count.py [--pid PID] [--duration SECONDS]

Every two seconds the most frequent strings are printed (from a hash map, as a DataFrame), and
the counts start again. Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import time

import bpfnb.bcc

PROGRAM = r"""
#include <uapi/linux/ptrace.h>

struct key_t {
    char text[80];
};
BPF_HASH(counts, struct key_t, u64, 10240);

int count_strlen(struct pt_regs *ctx) {
    struct key_t key = {};
    if (!PT_REGS_PARM1(ctx))
        return 0;
    bpf_probe_read_user_str(&key.text, sizeof(key.text), (void *)PT_REGS_PARM1(ctx));
    counts.increment(key);
    return 0;
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, default=-1, help="only this process")
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    args = parser.parse_args()
    with bpfnb.bcc.compile(PROGRAM, name="strlen_count", attach=False) as obj:
        # glibc's strlen is an IFUNC: its symbol is a resolver that picks an implementation for
        # the CPU. bcc 0.26 probes the resolver itself; bpfnb asks the dynamic linker for the
        # implementation.
        obj.attach_uprobe("count_strlen", "c", "strlen", pid=args.pid)
        print("counting strlen() arguments", flush=True)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(2)
                frame = obj.maps["counts"].to_frame(clear=True)
                if len(frame):
                    top = frame.sort_values("value", ascending=False).head(10)
                    print(top.to_string(index=False), end="\n\n", flush=True)
        except KeyboardInterrupt:
            pass
    print("detached")


if __name__ == "__main__":
    main()
