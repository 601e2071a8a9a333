"""A LiveHistogram in a real browser: JupyterLab from the project venv, Debian's Chromium driven
by Playwright, a notebook whose cells run a read() workload while the view refreshes.

Opt-in: runs only with ``BPFNB_BROWSER=1`` (it needs root, bcc, ``scripts/install-browser-deps``
and ``pip install -e '.[browser]'``). Playwright uses ``/usr/bin/chromium`` and never downloads a
browser. Screenshots are saved under ``tests/browser/artifacts/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser.conftest import ARTIFACTS, ENABLED, open_notebook

pytestmark = pytest.mark.skipif(not ENABLED, reason="browser test: set BPFNB_BROWSER=1")

CELLS = [
    "import asyncio, os\nfrom bpfnb.widgets import LiveHistogram\n%load_ext bpfnb\n"
    'fd = os.open("/dev/zero", os.O_RDONLY)',
    # Counts only this kernel's reads of that one fd: the workload below, nothing else.
    "%%bpf probe -D PID={os.getpid()} -D FD={fd}\n"
    "BPF_HISTOGRAM(sizes);\n"
    "TRACEPOINT_PROBE(syscalls, sys_enter_read) {\n"
    "    if (bpf_get_current_pid_tgid() >> 32 != PID || args->fd != FD)\n"
    "        return 0;\n"
    "    sizes.increment(bpf_log2l(args->count));\n"
    "    return 0;\n"
    "}",
    'view = LiveHistogram(probe.maps["sizes"], interval=0.25)\nview',
    # Reads of growing sizes for about 12 s; awaiting lets the view's task refresh meanwhile.
    "for i in range(120):\n"
    "    os.read(fd, 1 << (i // 10))\n"
    "    await asyncio.sleep(0.1)\n"
    'print("workload done")',
]


def notebook(path: Path) -> None:
    cells = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": f"cell-{n}",
            "metadata": {},
            "outputs": [],
            "source": source,
        }
        for n, source in enumerate(CELLS)
    ]
    doc = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(doc, indent=1))


BARS = """() => Array.from(document.querySelectorAll('.bpfnb-bar')).map(
    bar => [Number(bar.dataset.count), bar.getBoundingClientRect().width])"""


def test_live_histogram_bars_change_while_the_workload_runs(lab: str, browser, tmp_path: Path):
    notebook(tmp_path / "live.ipynb")
    page = open_notebook(browser, lab.format(name="live.ipynb"))
    try:
        # Not awaited: the command's promise settles only when every cell has run.
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        page.wait_for_function(
            "() => document.querySelectorAll('.bpfnb-bar').length >= 2", timeout=120_000
        )
        view = page.locator(".bpfnb-live-view").first
        first_bars = page.evaluate(BARS)
        first_shot = view.screenshot(path=str(ARTIFACTS / "live-histogram-1.png"))
        page.wait_for_timeout(3000)
        second_bars = page.evaluate(BARS)
        second_shot = view.screenshot(path=str(ARTIFACTS / "live-histogram-2.png"))
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
            ".some(out => out.innerText.includes('workload done'))",
            timeout=60_000,
        )
        page.screenshot(path=str(ARTIFACTS / "live-histogram-notebook.png"))
    except Exception:
        # What the page showed when it went wrong, for the CI artifacts.
        page.screenshot(path=str(ARTIFACTS / "live-histogram-failure.png"))
        raise

    first_total = sum(count for count, _ in first_bars)
    second_total = sum(count for count, _ in second_bars)
    # The bars filled in between the screenshots: more counts, more (or longer) bars drawn.
    assert second_total > first_total > 0, (first_bars, second_bars)
    assert len(second_bars) > len(first_bars) or first_bars != second_bars
    assert all(width >= 0 for _, width in second_bars)
    assert first_shot != second_shot
