"""A running ``bpftrace -f json``: its output read on two threads into a
:class:`~bpfnb.bpftrace.output.BpftraceOutput`.

bpftrace runs in its own session, so that an interrupt meant for the notebook (Jupyter signals
the kernel's whole process group) reaches bpfnb, which then stops bpftrace itself; and it gets
SIGTERM if the Python process dies, so that it never outlives it. Stopping sends SIGINT:
bpftrace detaches, runs ``END``, prints its maps and exits; SIGKILL follows if it does not.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO

from bpfnb.bpftrace.diagnostics import NOTIFY_ATTACHED, error_from
from bpfnb.bpftrace.output import BpftraceOutput
from bpfnb.bpftrace.script import Script, parse, with_marker
from bpfnb.errors import BpftraceError

__all__ = ["BpftraceProcess", "find_bpftrace"]

_PR_SET_PDEATHSIG = 1
_POLL = 0.1


def find_bpftrace(executable: str = "bpftrace") -> str:
    """The path of the bpftrace executable; BpftraceError when it is not installed."""
    found = shutil.which(executable)
    if found is None:
        raise BpftraceError(
            f"{executable!r} not found: install bpftrace (Debian/Ubuntu: apt-get install bpftrace)"
        )
    return found


def _prepare_child() -> None:
    # Runs in the child between fork and exec: SIGTERM when the process that started it dies,
    # and the signals bpfnb stops it with at their defaults (a shell may have ignored SIGINT).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        libc.signal(signum, 0)  # SIG_DFL


class BpftraceProcess:
    """One bpftrace process running ``text`` (a bpftrace program) with positional ``params``;
    ``output`` holds what it printed, updated by reader threads under ``changed``."""

    def __init__(
        self,
        text: str,
        params: Sequence[str | int] = (),
        executable: str = "bpftrace",
        max_texts: int = 10_000,
    ) -> None:
        self.source = text
        self.script: Script = parse(text)
        self.ran, self._inserted_at, self._inserted = with_marker(self.script)
        self.output = BpftraceOutput(tuple(self.script.maps), max_texts)
        self.changed = threading.Condition()
        self._dump_lock = threading.Lock()
        self._stopped = False
        self._dir = tempfile.mkdtemp(prefix="bpfnb-bpftrace-")
        path = os.path.join(self._dir, "program.bt")
        with open(path, "w") as f:
            f.write(self.ran)
        try:
            self._proc = subprocess.Popen(
                [find_bpftrace(executable), "-f", "json", path, *map(str, params)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
                env={**os.environ, NOTIFY_ATTACHED: "1"},
                start_new_session=True,
                preexec_fn=_prepare_child,
            )
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self._proc.stdout, self.output.on_stdout)),
            threading.Thread(target=self._read, args=(self._proc.stderr, self.output.on_stderr)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.name = f"bpftrace-{self._proc.pid}-reader"
            reader.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    @property
    def running(self) -> bool:
        """False once bpftrace has exited, or has closed its output (it then is exiting)."""
        return self._proc.poll() is None and not self._ended()

    def texts_since(self, index: int) -> list[tuple[int, str]]:
        """Text output numbered ``index`` and later, as (number, text)."""
        with self.changed:
            return self.output.texts_since(index)

    def error(self) -> BpftraceError:
        """The error bpftrace reported, located in the user's program."""
        with self.changed:
            errors, plain = list(self.output.errors), list(self.output.plain)
        return error_from(
            errors, plain, self.returncode, self.source, self.ran, self._inserted_at, self._inserted
        )

    # -- waiting ---------------------------------------------------------------------------------

    def wait(self, until: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait until ``until()`` holds (checked on every line bpftrace prints) or its output
        ends; False on ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.changed:
            while not until():
                if self._ended():
                    return until()
                left = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
                if left <= 0:
                    return False
                self.changed.wait(left)
        return True

    def _ended(self) -> bool:
        return not any(reader.is_alive() for reader in self._readers)

    def wait_attached(self, tick: Callable[[], None] | None = None) -> None:
        """Return once every probe is attached; BpftraceError when bpftrace exits first.

        ``tick`` runs about ten times a second meanwhile (to print output).
        """
        while not self.wait(lambda: self.output.attached, _POLL):
            if tick is not None:
                tick()
            if self._ended():
                break
        if tick is not None:
            tick()
        if not self.output.attached:
            self._proc.wait()
            raise self.error()

    def request_dump(self, timeout: float = 5.0) -> None:
        """Have bpftrace print every map now (SIGUSR1) and wait until it has."""
        with self._dump_lock:
            if not self.running:
                return
            before = self.output.dumps
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGUSR1)
            if not self.wait(lambda: self.output.dumps > before or not self.running, timeout):
                raise BpftraceError(
                    f"bpftrace printed no maps within {timeout:g} s of SIGUSR1 (bpftrace "
                    "after 0.17 runs self:signal probes instead): read what the program's own "
                    "print() calls show, with refresh='prints'"
                )

    # -- stopping --------------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        """Stop bpftrace (SIGINT; SIGKILL after ``timeout``) and read all it printed.
        Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self._proc.poll() is None:
                if not self._ended():  # else it is exiting: a SIGINT now would cut that short
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self._proc.pid, signal.SIGINT)
                try:
                    self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
                except BaseException:  # a second interrupt: do not wait for the last print
                    self._proc.kill()
                    self._proc.wait()
                    raise
            for reader in self._readers:
                reader.join(timeout)
        finally:
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            shutil.rmtree(self._dir, ignore_errors=True)

    def _read(self, stream: IO[str], handle: Callable[[str], None]) -> None:
        try:
            for line in stream:
                with self.changed:
                    handle(line.rstrip("\n"))
                    self.changed.notify_all()
        except (OSError, ValueError):
            pass  # closed under us by stop()
        finally:
            with self.changed:
                self.changed.notify_all()
