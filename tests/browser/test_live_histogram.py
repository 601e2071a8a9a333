"""A LiveHistogram in a real browser: JupyterLab from the project venv, Debian's Chromium driven
by Playwright, a notebook whose cells run a read() workload while the view refreshes.

Opt-in: runs only with ``BPFNB_BROWSER=1`` (it needs root, bcc, ``scripts/install-browser-deps``
and ``pip install -e '.[browser]'``). Playwright uses ``/usr/bin/chromium`` and never downloads a
browser. Screenshots are saved under ``tests/browser/artifacts/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ENABLED = os.environ.get("BPFNB_BROWSER") == "1"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
# As root, Chromium needs --no-sandbox; the rest keep it from reaching out to the network.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

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


def require(condition: bool, reason: str) -> None:
    # Asked for explicitly with BPFNB_BROWSER=1: a missing piece is a failure, not a skip.
    if not condition:
        pytest.fail(f"BPFNB_BROWSER=1 but {reason}", pytrace=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab from this venv on a free loopback port; yields the notebook's URL."""
    require(os.geteuid() == 0, "the browser test loads BPF programs and must run as root")
    require(
        shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) is not None,
        "jupyterlab is not installed in the venv (pip install -e '.[browser]')",
    )
    notebook(tmp_path / "live.ipynb")
    # Fresh settings: no "get Jupyter news?" popup over the view, nothing fetched for it.
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
        f"--ServerApp.root_dir={tmp_path}", f"--IdentityProvider.token={token}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run cells by command
        f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'lab.log').read_text()}")
                time.sleep(0.5)
        yield f"{base}/lab/tree/live.ipynb?token={token}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


KERNEL_READY = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const context = panel && panel.sessionContext;
    const kernel = context && context.session && context.session.kernel;
    return Boolean(context && context.isReady && kernel && kernel.connectionStatus === 'connected'
                   && kernel.status === 'idle');
}"""

BARS = """() => Array.from(document.querySelectorAll('.bpfnb-bar')).map(
    bar => [Number(bar.dataset.count), bar.getBoundingClientRect().width])"""


def test_live_histogram_bars_change_while_the_workload_runs(lab: str, tmp_path: Path) -> None:
    require(os.path.exists(CHROMIUM), f"{CHROMIUM} is missing (scripts/install-browser-deps)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("BPFNB_BROWSER=1 but playwright is not installed (pip install -e '.[browser]')")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path.parent / f"{tmp_path.name}-chromium"),  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = browser.new_page()
            page.goto(lab)
            page.wait_for_function(
                "() => window.jupyterapp && document.querySelector('.jp-Notebook')",
                timeout=60_000,
            )
            # Wait for the notebook's kernel session, then run every cell as "Run All" would.
            page.wait_for_function(KERNEL_READY, timeout=90_000)
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
        finally:
            browser.close()

    first_total = sum(count for count, _ in first_bars)
    second_total = sum(count for count, _ in second_bars)
    # The bars filled in between the screenshots: more counts, more (or longer) bars drawn.
    assert second_total > first_total > 0, (first_bars, second_bars)
    assert len(second_bars) > len(first_bars) or first_bars != second_bars
    assert all(width >= 0 for _, width in second_bars)
    assert first_shot != second_shot
