"""JupyterLab from the project venv and Debian's Chromium driven by Playwright, for the browser
tests. Opt-in: they run only with ``BPFNB_BROWSER=1`` (root, bcc, ``scripts/install-browser-deps``
and ``pip install -e '.[browser]'``); Playwright uses ``/usr/bin/chromium`` and never downloads
a browser. Screenshots are saved under ``tests/browser/artifacts/``.
"""

from __future__ import annotations

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
from typing import Any

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

KERNEL_READY = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const context = panel && panel.sessionContext;
    const kernel = context && context.session && context.session.kernel;
    return Boolean(context && context.isReady && kernel && kernel.connectionStatus === 'connected'
                   && kernel.status === 'idle');
}"""


def require(condition: bool, reason: str) -> None:
    """Asked for explicitly with BPFNB_BROWSER=1: a missing piece is a failure, not a skip."""
    if not condition:
        pytest.fail(f"BPFNB_BROWSER=1 but {reason}", pytrace=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab from this venv on a free loopback port, serving ``tmp_path``; yields the URL
    prefix of a notebook there (``{lab}/NAME.ipynb`` + the token query)."""
    require(os.geteuid() == 0, "the browser tests load BPF programs and must run as root")
    require(
        shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) is not None,
        "jupyterlab is not installed in the venv (pip install -e '.[browser]')",
    )
    # Fresh settings: no "get Jupyter news?" popup over the page, nothing fetched for it.
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    # Every cell in the page, not only those scrolled into view: the tests look at them all.
    notebook_settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True)
    (notebook_settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
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
        yield f"{base}/lab/tree/{{name}}?token={token}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A Chromium browser context (1280×900) with a fresh profile."""
    require(os.path.exists(CHROMIUM), f"{CHROMIUM} is missing (scripts/install-browser-deps)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("BPFNB_BROWSER=1 but playwright is not installed (pip install -e '.[browser]')")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path.parent / f"{tmp_path.name}-chromium"),  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def open_notebook(browser: Any, url: str) -> Any:
    """A page showing the notebook at ``url`` with its kernel idle and ready."""
    page = browser.new_page()
    page.goto(url)
    page.wait_for_function(
        "() => window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=60_000
    )
    page.wait_for_function(KERNEL_READY, timeout=90_000)
    return page
