"""What a notebook user sees, run in a real Jupyter kernel through nbclient: the README's first
cell, a workload in the same cell as its stream, and an interrupt in the middle of a run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

README = Path(__file__).parents[2] / "README.md"


class Kernel:
    """A live Jupyter kernel; :meth:`run` executes one cell and returns its text output."""

    def __init__(self, client: NotebookClient) -> None:
        self.client = client
        self.pid = 0

    def run(self, source: str, interrupt_after: float | None = None) -> tuple[str, list[str]]:
        """(stdout and results as text, the error's traceback lines) of one cell."""
        cell = nbformat.v4.new_code_cell(source)
        self.client.nb.cells.append(cell)
        timer = None
        if interrupt_after is not None:
            # What the notebook's stop button does: SIGINT to the kernel process.
            timer = threading.Timer(interrupt_after, os.kill, (self.pid, signal.SIGINT))
            timer.start()
        try:
            self.client.execute_cell(cell, len(self.client.nb.cells) - 1)
        except CellExecutionError:
            pass
        finally:
            if timer is not None:
                timer.cancel()
        text, error = [], []
        for out in cell.outputs:
            if out.output_type == "stream":
                text.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                text.append(out.data.get("text/plain", ""))
            elif out.output_type == "error":
                error = [_plain(line) for line in out.traceback]
        return "".join(text), error


def _plain(line: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", line)


@pytest.fixture
def kernel(bcc_ok: None) -> Iterator[Kernel]:
    client = NotebookClient(nbformat.v4.new_notebook(), timeout=120, kernel_name="python3")
    with client.setup_kernel():
        kernel = Kernel(client)
        out, _ = kernel.run("import os\nprint(os.getpid())")
        kernel.pid = int(out)
        yield kernel


def _code_blocks(markdown: str, heading: str) -> list[str]:
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:python|c)\n(.*?)```", section, re.S)


def test_the_readme_first_cell_prints_what_it_promises(kernel: Kernel) -> None:
    blocks = _code_blocks(README.read_text(), "## A first cell")
    assert len(blocks) == 3
    for block in blocks:
        _, error = kernel.run(block)
        assert error == []
    out, _ = kernel.run('print(counter.maps["calls"][0])')
    assert out.strip() == "100"  # the comment in the README says 100


COUNTED = """%%bpf counter -D TID={threading.get_native_id()}
struct event_t { u32 tid; u64 seq; };
BPF_ARRAY(sequence, u64, 1);
BPF_PERF_OUTPUT(events);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((u32)bpf_get_current_pid_tgid() != TID)
        return 0;
    int zero = 0;
    u64 *next = sequence.lookup(&zero);
    if (!next)
        return 0;
    struct event_t event = {.tid = TID, .seq = __sync_fetch_and_add(next, 1)};
    events.perf_submit(args, &event, sizeof(event));
    return 0;
}
"""


def test_a_workload_in_the_same_cell_as_its_stream_is_counted_exactly(kernel: Kernel) -> None:
    kernel.run("%load_ext bpfnb\nimport os, threading")
    _, error = kernel.run(COUNTED)
    assert error == []
    # The stream is opened and the workload runs in one cell. Within the buffers' bound (here
    # room for every event) every event arrives.
    n = 50_000
    workload = f"for _ in range({n}): os.getppid()"
    _, error = kernel.run(f's = counter.stream("events", perf_pages=1024)\n{workload}')
    assert error == []
    stats = "s.poll()\nf = s.to_frame()\nprint(repr(s.stats), f['seq'].nunique())"
    out, _ = kernel.run(stats)
    assert out.split() == [f"received={n}", "lost=0", "dropped=0", "discarded=0", str(n)]
    # Past the bound (one page per CPU: room for about 127 events) the background reader
    # keeps what it can, and every event it could not keep is counted as lost.
    _, error = kernel.run(f's.close()\ns = counter.stream("events", perf_pages=1)\n{workload}')
    assert error == []
    *fields, distinct = kernel.run(stats)[0].split()
    counts = {k: int(v) for k, v in (f.split("=") for f in fields)}  # and kernel_lost, its own
    assert counts["received"] + counts["lost"] == n and counts["received"] >= 127
    assert (counts["dropped"], counts["discarded"], int(distinct)) == (0, 0, counts["received"])


PRINTER = """%%bpf printer --duration 30
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    bpf_trace_printk("getppid called\\n");
    return 0;
}
"""


def _attached_program_ids() -> set[int]:
    perf = json.loads(
        subprocess.run(
            ["bpftool", "perf", "list", "--json"], capture_output=True, text=True, check=True
        ).stdout
        or "[]"
    )
    links = json.loads(
        subprocess.run(
            ["bpftool", "link", "list", "--json"], capture_output=True, text=True, check=True
        ).stdout
        or "[]"
    )
    return {entry["prog_id"] for entry in perf + links}


def test_an_interrupted_duration_detaches_and_says_so_in_one_line(kernel: Kernel) -> None:
    kernel.run("%load_ext bpfnb")
    out, error = kernel.run(PRINTER, interrupt_after=3.0)
    assert len(error) == 1, error  # one line, no traceback into bpfnb
    assert re.fullmatch(r"interrupted after \d+\.\d s; printer detached", error[0])
    ids, _ = kernel.run("print(*[p.id for p in printer.programs.values()])")
    assert {int(i) for i in ids.split()}
    assert not {int(i) for i in ids.split()} & _attached_program_ids()
    listing, _ = kernel.run("%bpf_list")
    assert "printer: not attached" in listing
