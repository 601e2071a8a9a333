"""Print each program started on the machine, with bcc (gobpf's execsnoop example).

    sudo python examples/bcc/execsnoop.py [--duration SECONDS]

A tracepoint on execve sends (pid, ppid, comm, filename) through a perf buffer; bpfnb decodes
the events in batches. Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import subprocess
import time

import bpfnb.bcc

PROGRAM = r"""
#include <linux/sched.h>

struct exec_event {
    u32 pid;
    u32 ppid;
    char comm[TASK_COMM_LEN];
    char filename[128];
};
BPF_PERF_OUTPUT(execs);

TRACEPOINT_PROBE(syscalls, sys_enter_execve) {
    struct exec_event event = {};
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    event.pid = bpf_get_current_pid_tgid() >> 32;
    event.ppid = task->real_parent->tgid;
    bpf_get_current_comm(&event.comm, sizeof(event.comm));
    bpf_probe_read_user_str(&event.filename, sizeof(event.filename), args->filename);
    execs.perf_submit(args, &event, sizeof(event));
    return 0;
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    args = parser.parse_args()
    with bpfnb.bcc.compile(PROGRAM, name="execsnoop") as obj:
        stream = obj.stream("execs")
        print(f"{'PID':>7} {'PPID':>7} {'COMM':<16} FILENAME", flush=True)
        subprocess.run(["true"], check=False)  # one exec of our own to show
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while deadline is None or time.monotonic() < deadline:
                if stream.poll(timeout=0.2):
                    for row in stream.to_frame().itertuples(index=False):
                        print(f"{row.pid:>7} {row.ppid:>7} {row.comm:<16} {row.filename}")
                    stream.clear()
        except KeyboardInterrupt:
            pass
        print(f"lost events: {stream.stats.lost}")
    print("detached")


if __name__ == "__main__":
    main()
