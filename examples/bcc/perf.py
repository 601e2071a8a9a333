"""Report fchownat() calls through a perf buffer, with bcc (gobpf's perf example).

    sudo python examples/bcc/perf.py [--duration SECONDS]

gobpf's example used a kprobe on the syscall; a tracepoint works on every kernel, including
those built without kprobes. The script chowns a file of its own once a second, so there is
always something to see. Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import bpfnb.bcc

PROGRAM = r"""
struct chown_event {
    u32 pid;
    u32 uid;
    u32 gid;
    int dfd;
    char comm[16];
    char filename[128];
};
BPF_PERF_OUTPUT(chown_events);

TRACEPOINT_PROBE(syscalls, sys_enter_fchownat) {
    struct chown_event event = {};
    event.pid = bpf_get_current_pid_tgid() >> 32;
    event.uid = args->user;
    event.gid = args->group;
    event.dfd = args->dfd;
    bpf_get_current_comm(&event.comm, sizeof(event.comm));
    bpf_probe_read_user_str(&event.filename, sizeof(event.filename), args->filename);
    chown_events.perf_submit(args, &event, sizeof(event));
    return 0;
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    args = parser.parse_args()
    with (
        bpfnb.bcc.compile(PROGRAM, name="perf") as obj,
        tempfile.TemporaryDirectory() as directory,
    ):
        stream = obj.stream("chown_events")
        open(os.path.join(directory, "owned"), "w").close()
        dir_fd = os.open(directory, os.O_RDONLY)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while deadline is None or time.monotonic() < deadline:
                # With dir_fd, os.chown calls fchownat() itself.
                os.chown("owned", os.getuid(), os.getgid(), dir_fd=dir_fd)
                time.sleep(1)
                if stream.poll():
                    for e in stream.to_frame().itertuples(index=False):
                        print(f"{e.comm} (pid {e.pid}) chown {e.filename} to {e.uid}:{e.gid}")
                    stream.clear()
        except KeyboardInterrupt:
            pass
        finally:
            os.close(dir_fd)
    print("detached")


if __name__ == "__main__":
    main()
