"""Live views inside a real IPython kernel: the refresh task runs while other cells execute,
updates reach the front end as widget messages (not cell outputs), and views stop or close
with their object and their cell.

The kernel is the project venv's ipykernel, driven through jupyter_client as a front end does,
with each execute request carrying a ``cellId`` as JupyterLab sends it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

SETUP = """
import asyncio, json, os
from bpfnb.widgets import LiveHistogram, LiveTable
%load_ext bpfnb
fd = os.open("/dev/zero", os.O_RDONLY)
made = []
"""

# Counts only the reads of one fd of the kernel process: the test's workload, exactly.
PROBE = """%%bpf probe -D PID={os.getpid()} -D FD={fd}
BPF_HISTOGRAM(sizes);
BPF_HASH(by_size, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_read) {
    if (bpf_get_current_pid_tgid() >> 32 != PID || args->fd != FD)
        return 0;
    sizes.increment(bpf_log2l(args->count));
    by_size.increment((u32)args->count);
    return 0;
}
"""


@dataclass
class Reply:
    outputs: list[dict[str, Any]] = field(default_factory=list)
    comm_updates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stdout(self) -> str:
        return "".join(o["text"] for o in self.outputs if o.get("name") == "stdout")


class Kernel:
    def __init__(self) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(kernel_name="python3")

    def run(self, code: str, cell_id: str, timeout: float = 60) -> Reply:
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        msg = self.client.session.msg("execute_request", content, metadata={"cellId": cell_id})
        self.client.shell_channel.send(msg)
        reply = Reply()
        while True:
            message = self.client.get_iopub_msg(timeout=timeout)
            if message["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
                if message["msg_type"] == "comm_msg":
                    reply.comm_updates.append(message["content"])
                continue
            kind = message["msg_type"]
            if kind == "status" and message["content"]["execution_state"] == "idle":
                break
            if kind in ("stream", "display_data", "execute_result", "error"):
                reply.outputs.append({"type": kind, **message["content"]})
            elif kind == "comm_msg":
                reply.comm_updates.append(message["content"])
        errors = [o for o in reply.outputs if o["type"] == "error"]
        assert not errors, "\n".join(errors[0]["traceback"])
        return reply

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture
def kernel_session(bcc_ok: None) -> Iterator[Kernel]:
    kernel = Kernel()
    try:
        python = kernel.run("import sys; print(sys.executable)", "which")
        assert python.stdout.strip() == sys.executable, "the kernel is not the project venv's"
        kernel.run(SETUP, "setup")
        kernel.run(PROBE, "probe")
        yield kernel
    finally:
        kernel.shutdown()


def body_updates(reply: Reply) -> list[str]:
    """The HTML bodies sent to the front end: widget state updates carrying bars."""
    values = []
    for content in reply.comm_updates:
        state = content.get("data", {}).get("state", {})
        value = state.get("value")
        if isinstance(value, str) and "bpfnb-bar" in value:
            values.append(value)
    return values


def test_view_refreshes_while_another_cell_runs(kernel_session: Kernel) -> None:
    shown = kernel_session.run(
        'view = LiveHistogram(probe.maps["sizes"], interval=0.1)\nview', "show"
    )
    # One output: the widget, whose text form is stable for nbval.
    assert len(shown.outputs) == 1
    data = shown.outputs[0]["data"]
    assert data["text/plain"] == "LiveHistogram('sizes', kind='log2')"
    assert "application/vnd.jupyter.widget-view+json" in data

    working = kernel_session.run(
        """
before = view.refresh_count
seen = []
for _ in range(10):
    os.read(fd, 100)
    await asyncio.sleep(0.1)
    seen.append(int(view.data["count"].sum()) if len(view.data) else 0)
print(json.dumps({"refreshes": view.refresh_count - before, "seen": seen}))
""",
        "work",
    )
    # The only output of the working cell is its own print: the view adds none.
    assert [o["type"] for o in working.outputs] == ["stream"]
    progress = json.loads(working.stdout)
    assert progress["refreshes"] >= 5, progress
    seen = progress["seen"]
    assert seen == sorted(seen) and seen[4] > 0 and seen[-1] <= 10, progress
    # The refreshes reached the front end as widget updates with the bars in them.
    assert len(body_updates(working)) >= 3

    checked = kernel_session.run('view.refresh(); print(int(view.data["count"].sum()))', "check")
    assert checked.stdout.strip() == "10"

    kernel_session.run("%bpf_close probe", "close")
    stopped = kernel_session.run(
        "await asyncio.sleep(0.3); n = view.refresh_count; await asyncio.sleep(0.3)\n"
        "print(view.running, view.refresh_count == n, view.status.split(' · ')[0])",
        "after",
    )
    assert stopped.stdout.strip() == "False True stopped (source closed)"


def test_rerunning_a_cell_closes_the_views_it_made(kernel_session: Kernel) -> None:
    cell = 'made.append(LiveTable(probe.maps["by_size"], interval=0.1))'
    kernel_session.run(cell, "table-cell")
    kernel_session.run("os.read(fd, 3)", "other-cell")
    kernel_session.run(cell, "table-cell")
    state = kernel_session.run(
        "await asyncio.sleep(0.3)\n"
        "print([(v.closed, v.running) for v in made], list(made[1].data['key']))",
        "inspect",
    )
    assert state.stdout.strip() == "[(True, False), (False, True)] [3]"
    # Re-running the %%bpf cell closes the old object, which stops the view on it.
    kernel_session.run(PROBE, "probe")
    state = kernel_session.run(
        "await asyncio.sleep(0.3); print(made[1].running, made[1].status.split(' · ')[0])",
        "inspect-again",
    )
    assert state.stdout.strip() == "False stopped (source closed)"
    kernel_session.run("made[1].close()\n%bpf_close probe", "cleanup")


def test_bpf_show_displays_the_fitting_view(kernel_session: Kernel) -> None:
    hist = kernel_session.run("%bpf_show probe.sizes --interval 0.2", "show-hist")
    table = kernel_session.run("%bpf_show probe.by_size --interval 0.2", "show-table")
    assert hist.outputs[0]["data"]["text/plain"] == "LiveHistogram('sizes', kind='log2')"
    assert table.outputs[0]["data"]["text/plain"] == "LiveTable('by_size', top=20)"
    counted = kernel_session.run(
        "view = %bpf_show probe.sizes --kind linear --interval 0.2\n"
        "for _ in range(3):\n"
        "    os.read(fd, 5)\n"
        "    await asyncio.sleep(0.1)\n"
        "await asyncio.sleep(0.5)\n"
        "print(view.running, list(view.data['range']), list(view.data['count']))",
        "show-linear",
    )
    # Linear slots are the values themselves: bpf_log2l(5) is slot 3, counted 3 times.
    assert counted.stdout.strip() == "True ['3'] [3]"
