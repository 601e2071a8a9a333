"""Print the command lines typed into bash, from a uretprobe on readline() (gobpf's
bash_readline example).

    sudo python examples/bcc/bash_readline.py [--bash /bin/bash] [--duration SECONDS]

Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import shutil
import time

import bpfnb.bcc
from bpfnb.link.binaries import find_library, symbol_offset

PROGRAM = r"""
#include <uapi/linux/ptrace.h>

struct line_event {
    u32 pid;
    char line[80];
};
BPF_PERF_OUTPUT(lines);

int on_readline_return(struct pt_regs *ctx) {
    struct line_event event = {};
    if (!PT_REGS_RC(ctx))
        return 0;
    event.pid = bpf_get_current_pid_tgid() >> 32;
    bpf_probe_read_user_str(&event.line, sizeof(event.line), (void *)PT_REGS_RC(ctx));
    lines.perf_submit(ctx, &event, sizeof(event));
    return 0;
}
"""


def readline_binary(bash: str) -> str:
    # Distributions build bash with its own readline, or link the shared libreadline.
    try:
        symbol_offset(bash, "readline")
        return bash
    except Exception:
        lib = find_library("readline")
        if lib is None:
            raise SystemExit(f"neither {bash} nor a libreadline has a readline() symbol") from None
        return lib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bash", default=shutil.which("bash") or "/bin/bash")
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    args = parser.parse_args()
    binary = readline_binary(args.bash)
    with bpfnb.bcc.compile(PROGRAM, name="bash_readline", attach=False) as obj:
        obj.attach_uprobe("on_readline_return", binary, "readline", ret=True)
        stream = obj.stream("lines")
        print(f"watching readline() in {binary}: type commands in a bash shell", flush=True)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while deadline is None or time.monotonic() < deadline:
                if stream.poll(timeout=0.5):
                    for e in stream.to_frame().itertuples(index=False):
                        print(f"{e.pid:>7} {e.line}", flush=True)
                    stream.clear()
        except KeyboardInterrupt:
            pass
    print("detached")


if __name__ == "__main__":
    main()
