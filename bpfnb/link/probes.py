"""Dynamic probes (kprobes, uprobes): the fd-based PMUs, the tracefs fallback, and the sweep.

The PMUs (``/sys/bus/event_source/devices/{kprobe,uprobe}``, Linux 4.17) make a probe that lives
as long as its perf event fd. Older kernels need an entry written to tracefs
``kprobe_events``/``uprobe_events``; bpfnb names those ``bpfnb_<pid>_<n>_<target>`` so that
:func:`sweep_stale_probes` can remove the ones whose process died without cleaning up.
"""

from __future__ import annotations

import ctypes as ct
import functools
import itertools
import os
import re

from bpfnb.errors import AttachError
from bpfnb.link.tracepoint import open_tracepoint_event
from bpfnb.sys import perf, tracefs
from bpfnb.sys.fd import FD
from bpfnb.sys.features import PMU_DIR

__all__ = [
    "PMU_DIR",
    "ProbeEvent",
    "add_probe_event",
    "open_pmu_probe",
    "pmu_type",
    "ref_ctr_shift",
    "retprobe_bit",
    "sweep_stale_probes",
]

EVENT_PREFIX = "bpfnb_"
_STALE_NAME = re.compile(r"^bpfnb_(\d+)_")
_counter = itertools.count()


def pmu_type(kind: str) -> int | None:
    """The perf type number of the ``kind`` PMU ("kprobe", "uprobe"), or None when absent."""
    try:
        with open(os.path.join(PMU_DIR, kind, "type")) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def retprobe_bit(kind: str) -> int:
    """Which bit of ``config`` asks the PMU for a return probe (``format/retprobe``)."""
    try:
        with open(os.path.join(PMU_DIR, kind, "format", "retprobe")) as f:
            text = f.read().strip()  # "config:0"
        return int(text.split(":", 1)[1].split("-")[0])
    except (OSError, ValueError, IndexError):
        return 0


#: Where the uprobe PMU takes a semaphore's file offset when its format file is missing:
#: ``PERF_UPROBE_REF_CTR_OFFSET_SHIFT``.
REF_CTR_SHIFT = 32


def ref_ctr_shift(kind: str = "uprobe") -> int | None:
    """Which bit of ``config`` starts the uprobe PMU's reference counter (semaphore) offset
    (``format/ref_ctr_offset``, "config:32-63"), or None when the kernel has no such field
    (before Linux 4.20, commit a6ca88b241d5)."""
    try:
        with open(os.path.join(PMU_DIR, kind, "format", "ref_ctr_offset")) as f:
            text = f.read().strip()
        return int(text.split(":", 1)[1].split("-")[0])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError):
        return REF_CTR_SHIFT


def open_pmu_probe(
    pmu: int,
    kind: str,
    ret: bool,
    name_or_path: str,
    offset: int,
    pid: int = -1,
    ref_ctr_offset: int = 0,
) -> FD:
    """A disabled perf event on the ``kind`` PMU: a function name (kprobe) or a file path
    (uprobe) in ``config1``, the offset in ``config2``.

    ``ref_ctr_offset`` (uprobes only) is the file offset of a USDT semaphore: the kernel
    increments that counter in every process mapping the file while the probe exists.
    """
    text = ct.create_string_buffer(name_or_path.encode())
    attr = perf.PerfEventAttr(type=pmu, sample_period=1)
    attr.config = (1 << retprobe_bit(kind)) if ret else 0
    if ref_ctr_offset:
        attr.config |= ref_ctr_offset << (ref_ctr_shift(kind) or REF_CTR_SHIFT)
    attr.config1 = ct.addressof(text)
    attr.config2 = offset
    attr.wakeup_events = 1
    attr.flags = perf.FLAG_DISABLED
    return perf.perf_event_open(attr, pid=pid, cpu=0 if pid == -1 else -1)


def events_file(kind: str) -> str | None:
    """tracefs ``kprobe_events``/``uprobe_events``, or None when the kernel has none."""
    root = tracefs.mount_point()
    if root is None:
        return None
    path = os.path.join(root, f"{kind}_events")
    return path if os.path.exists(path) else None


class ProbeEvent:
    """One bpfnb entry in tracefs ``{kind}_events``; ``remove()`` is idempotent."""

    def __init__(self, kind: str, group: str, name: str, event_id: int) -> None:
        self.kind = kind
        self.group = group
        self.name = name
        self.id = event_id
        self._removed = False

    def remove(self) -> None:
        if self._removed:
            return
        self._removed = True
        write_events(self.kind, f"-:{self.group}/{self.name}")

    def __repr__(self) -> str:
        return f"ProbeEvent({self.kind}, {self.group}/{self.name}, id={self.id})"


def write_events(kind: str, line: str) -> None:
    path = events_file(kind)
    if path is None:
        raise FileNotFoundError(f"tracefs has no {kind}_events")
    # O_APPEND: a plain write-open would clear every probe on the system. (Python's "a" mode
    # also seeks to the end, which tracefs refuses with EINVAL.)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def add_probe_event(kind: str, ret: bool, where: str, hint: str) -> ProbeEvent:
    """Create a tracefs probe at ``where`` ("func+0x0" or "/path:0x1234") named after this pid."""
    sweep_once()
    group = f"{kind}s"  # the kernel's default groups: kprobes, uprobes
    safe = re.sub(r"[^A-Za-z0-9_]", "_", hint)
    name = f"{EVENT_PREFIX}{os.getpid()}_{next(_counter)}_{safe}"[:60]
    try:
        write_events(kind, f"{'r' if ret else 'p'}:{group}/{name} {where}")
    except OSError as err:
        raise AttachError(f"cannot create {kind} {where!r} in tracefs", err.errno) from err
    root = tracefs.mount_point() or ""
    try:
        with open(os.path.join(root, "events", group, name, "id")) as f:
            event_id = int(f.read())
    except OSError as err:
        ProbeEvent(kind, group, name, 0).remove()
        raise AttachError(f"tracefs created {kind} {name} but has no id for it") from err
    return ProbeEvent(kind, group, name, event_id)


def open_probe_event(probe: ProbeEvent, pid: int = -1) -> FD:
    """A disabled perf event on a tracefs probe; removes the probe when that fails."""
    try:
        return open_tracepoint_event(probe.id, pid=pid)
    except OSError:
        probe.remove()
        raise


def sweep_stale_probes() -> list[str]:
    """Remove bpfnb tracefs probes whose process is gone; returns the entries removed.

    A probe still in use (EBUSY) is left alone: some process still holds its perf event.
    """
    removed = []
    for kind in ("kprobe", "uprobe"):
        path = events_file(kind)
        if path is None:
            continue
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            head = line.split(" ", 1)[0]  # "p:uprobes/bpfnb_123_0_malloc"
            event = head.split(":", 1)[-1]
            group, _, name = event.partition("/")
            match = _STALE_NAME.match(name)
            if not match or tracefs.owner_alive(int(match.group(1))):
                continue
            try:
                write_events(kind, f"-:{group}/{name}")
            except OSError:
                continue
            removed.append(f"{group}/{name}")
    return removed


@functools.cache
def sweep_once() -> list[str]:
    """:func:`sweep_stale_probes`, once per process: on the first kprobe or uprobe bpfnb
    attaches, before it could add entries of its own."""
    try:
        return sweep_stale_probes()
    except OSError:
        return []
