"""Uprobe and uretprobe programs (``SEC("uprobe/path:symbol")``) on a user-space function."""

from __future__ import annotations

import errno

from bpfnb.errors import AttachError, KernelFeatureError
from bpfnb.link import probes
from bpfnb.link.binaries import find_binary, symbol_offset
from bpfnb.link.fdlink import FdLink, attach_error
from bpfnb.link.perf_event import bind_to_event

__all__ = ["attach_uprobe", "resolve_uprobe"]

METHODS = ("auto", "pmu", "tracefs")


def resolve_uprobe(path_or_lib: str, symbol_or_offset: str | int) -> tuple[str, int, str]:
    """(file, file offset, label) for a library name or path and a symbol or file offset."""
    path = find_binary(path_or_lib)
    if isinstance(symbol_or_offset, int):
        offset = symbol_or_offset
        label = f"{path}:{offset:#x}"
    else:
        offset = symbol_offset(path, symbol_or_offset)
        label = f"{path}:{symbol_or_offset}"
    return path, offset, label


def attach_uprobe(
    prog_fd: int,
    path_or_lib: str,
    symbol_or_offset: str | int,
    pid: int = -1,
    ret: bool = False,
    method: str = "auto",
    ref_ctr_offset: int = 0,
    cookie: int = 0,
) -> FdLink:
    """Run a uprobe program when a user function is entered (or returns: ``ret=True``).

    ``path_or_lib`` is a path or a name found like the linker does (``"c"`` for libc);
    ``symbol_or_offset`` a function name (``"malloc"``, ``"f+0x4"``) or a file offset. ``pid``
    limits the probe to one process. ``method`` picks the uprobe PMU or a tracefs
    ``uprobe_events`` entry; "auto" prefers the PMU. ``ref_ctr_offset`` is the file offset of a
    USDT semaphore (``unsigned short``) that the kernel keeps incremented while the probe lives.
    ``cookie`` is what the program's ``bpf_get_attach_cookie()`` returns at this probe.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    kind = "uretprobe" if ret else "uprobe"
    probes.sweep_once()
    path, offset, label = resolve_uprobe(path_or_lib, symbol_or_offset)
    if pid != -1:
        label += f" (pid {pid})"
    pmu = probes.pmu_type("uprobe") if method != "tracefs" else None
    if pmu is not None and ref_ctr_offset and probes.ref_ctr_shift("uprobe") is None:
        raise KernelFeatureError(
            "uprobe semaphores", "the uprobe PMU has no ref_ctr_offset: this kernel predates 4.20"
        )
    if pmu is not None:
        try:
            event = probes.open_pmu_probe(
                pmu, "uprobe", ret, path, offset, pid=pid, ref_ctr_offset=ref_ctr_offset
            )
        except OSError as err:
            if err.errno == errno.ESRCH:
                raise AttachError(f"cannot attach {kind} {label}: no process {pid}") from err
            raise attach_error(f"{kind} {label}", err) from err
        return FdLink(kind, label, bind_to_event(prog_fd, event, f"{kind} {label}", cookie))
    if method == "pmu":
        raise KernelFeatureError(
            "uprobe PMU", f"no {probes.PMU_DIR}/uprobe: this kernel predates Linux 4.17"
        )
    if probes.events_file("uprobe") is None:
        raise KernelFeatureError(
            "uprobes",
            "this kernel was built without CONFIG_UPROBE_EVENTS (no uprobe PMU and "
            "no uprobe_events in tracefs)",
        )
    hint = symbol_or_offset if isinstance(symbol_or_offset, str) else f"{offset:x}"
    where = f"{path}:{offset:#x}" + (f"({ref_ctr_offset:#x})" if ref_ctr_offset else "")
    probe = probes.add_probe_event("uprobe", ret, where, str(hint))
    try:
        event = probes.open_probe_event(probe, pid=pid)
    except OSError as err:
        raise attach_error(f"{kind} {label}", err) from err
    try:
        fds = bind_to_event(prog_fd, event, f"{kind} {label}", cookie)
    except AttachError:
        probe.remove()
        raise
    return FdLink(kind, label, fds, steps=[probe.remove])
