"""The examples as smoke tests: each runs for a few seconds, shows what it promises, and stops
cleanly."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import need
from tests.kernel.test_link_network import send_from_namespace, veth_pair  # noqa: F401

EXAMPLES = Path(__file__).parents[2] / "examples"


def run(script: str, *args: str, duration: float = 2.5) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args, "--duration", str(duration)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("detached")
    return result.stdout


@pytest.fixture
def clang() -> None:
    need(shutil.which("clang") is not None, "clang is not installed")


@contextlib.contextmanager
def repeating(action: Callable[[], object], every: float = 0.05) -> Iterator[None]:
    """Run ``action`` every ``every`` seconds on a thread for the block: the test's workload."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            action()

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()


def test_elf_tracepoint_counter(clang: None) -> None:
    with repeating(lambda: Path("/proc/self/stat").read_bytes()):  # an openat() each time
        out = run("elf/tracepoint_counter.py")
    assert "name  value" in out  # at least one table of openat() counts


def test_elf_socket_filter(clang: None) -> None:
    out = run("elf/socket_filter.py", "--interface", "lo")
    assert "'udp':" in out  # the script sends one datagram to lo each second


def test_elf_tracepipe(clang: None) -> None:
    out = run("elf/tracepipe.py")
    assert "exec: true" in out  # the script runs `true` itself


def test_bcc_execsnoop(bcc_ok: None) -> None:
    out = run("bcc/execsnoop.py")
    assert "/true" in out and "lost events: 0" in out


def test_bcc_perf(bcc_ok: None) -> None:
    out = run("bcc/perf.py")
    assert "chown owned to" in out


def test_bcc_strlen_count(bcc_ok: None) -> None:
    echo = ["/bin/echo", "bpfnb"]  # echo's fputs calls libc's strlen
    with repeating(lambda: subprocess.run(echo, capture_output=True), every=0.2):
        out = run("bcc/strlen_count.py", duration=3)
    assert "text  value" in out


def test_bcc_bash_readline_sees_a_typed_command(bcc_ok: None) -> None:
    bash = shutil.which("bash")
    need(bash is not None, "no bash")
    example = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "bcc/bash_readline.py"), "--duration", "6"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert example.stdout is not None
    assert "watching readline()" in example.stdout.readline()
    # An interactive bash on a terminal of our own, typing one command.
    pid, terminal = pty.fork()
    if pid == 0:  # pragma: no cover - the child becomes bash
        os.execv(str(bash), [str(bash), "--norc", "--noprofile", "-i"])
    try:
        time.sleep(0.5)
        os.write(terminal, b"echo bpfnb_typed_this\nexit\n")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if select.select([terminal], [], [], 0.2)[0]:
                try:
                    os.read(terminal, 4096)
                except OSError:
                    break
    finally:
        os.waitpid(pid, 0)
        os.close(terminal)
    out, _ = example.communicate(timeout=30)
    assert example.returncode == 0
    assert "echo bpfnb_typed_this" in out


def test_bcc_xdp_drop(bcc_ok: None, veth_pair) -> None:  # noqa: F811
    host_if, host_ip, ns, _ = veth_pair
    example = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "bcc/xdp_drop.py"),
            host_if,
            "--protocol",
            "udp",
            "--duration",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert example.stdout is not None
    assert "dropping udp" in example.stdout.readline()
    send_from_namespace(ns, (host_ip, 9999), 10)
    out, err = example.communicate(timeout=60)
    assert example.returncode == 0, err
    assert "'udp': 10" in out
