"""Programs on perf events: sampling (``BPF_PROG_TYPE_PERF_EVENT``), and the shared step that
binds any program to a perf event fd (tracepoints, kprobes and uprobes use it too)."""

from __future__ import annotations

import errno

from bpfnb.errors import AttachError, KernelFeatureError
from bpfnb.link.fdlink import NOT_SUPPORTED, FdLink, attach_error, online_cpus
from bpfnb.sys import bpf, perf
from bpfnb.sys.constants import AttachType
from bpfnb.sys.fd import FD

__all__ = ["PERF_EVENT_NAMES", "attach_perf_event", "bind_to_event"]

_U64 = (1 << 64) - 1
PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_HW_CPU_CYCLES = 0
PERF_COUNT_SW_TASK_CLOCK = 1

#: Readable names for the common sampling events: name -> (perf type, config).
PERF_EVENT_NAMES: dict[str, tuple[int, int]] = {
    "cpu-clock": (PERF_TYPE_SOFTWARE, perf.PERF_COUNT_SW_CPU_CLOCK),
    "task-clock": (PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK),
    "cpu-cycles": (PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES),
}


def bind_to_event(prog_fd: int, event: FD, what: str, cookie: int = 0) -> list[FD]:
    """Run ``prog_fd`` on each hit of ``event`` and enable it; returns the fds to keep open.

    A perf link (BPF_LINK_CREATE with BPF_PERF_EVENT) is preferred, since the program then shows
    in ``bpftool link``. Kernels before 5.15 (commit b89fbfbb854c) refuse that attach type, and
    the ``PERF_EVENT_IOC_SET_BPF`` ioctl on the event does the same job there. ``cookie`` is
    what the program's ``bpf_get_attach_cookie()`` returns; only a perf link carries one.
    """
    fds = [event]
    try:
        fds.append(
            bpf.link_create(prog_fd, event.fileno(), AttachType.PERF_EVENT, extra=(cookie & _U64,))
        )
    except OSError as err:
        if err.errno not in NOT_SUPPORTED:
            event.close()
            raise attach_error(what, err) from err
        if cookie:
            event.close()
            raise KernelFeatureError(
                f"{what} with BPF cookie {cookie}",
                "only a perf link carries a cookie, and this kernel has none (before 5.15)",
            ) from err
        try:
            perf.attach_bpf(event.fileno(), prog_fd)
        except OSError as ioctl_err:
            event.close()
            raise attach_error(what, ioctl_err) from ioctl_err
    try:
        perf.enable(event.fileno())
    except OSError as err:
        for fd in reversed(fds):
            fd.close()
        raise attach_error(what, err) from err
    # The BPF link goes first at close: detach, then drop the event.
    return list(reversed(fds))


def attach_perf_event(
    prog_fd: int,
    event: int | str = "cpu-clock",
    config: int = 0,
    *,
    sample_period: int = 0,
    sample_freq: int = 0,
    pid: int = -1,
    cpu: int = -1,
) -> FdLink:
    """Run a ``perf_event`` program on each sample of a perf event.

    ``event`` is a perf type (``PERF_TYPE_SOFTWARE``...) with ``config``, or a name from
    :data:`PERF_EVENT_NAMES`. Give exactly one of ``sample_period`` and ``sample_freq`` (Hz).
    With ``cpu=-1`` and ``pid=-1`` one event is opened on every online CPU.
    """
    if isinstance(event, str):
        try:
            perf_type, config = PERF_EVENT_NAMES[event]
        except KeyError:
            names = ", ".join(sorted(PERF_EVENT_NAMES))
            raise ValueError(f"unknown perf event {event!r}; known: {names}") from None
    else:
        perf_type = event
    if bool(sample_period) == bool(sample_freq):
        raise ValueError("give exactly one of sample_period and sample_freq")
    flags = perf.FLAG_DISABLED | (perf.FLAG_FREQ if sample_freq else 0)
    cpus = online_cpus() if cpu == -1 and pid == -1 else [cpu]
    target = f"type={perf_type},config={config}," + (
        f"freq={sample_freq}" if sample_freq else f"period={sample_period}"
    )
    if pid != -1:
        target += f",pid={pid}"
    fds: list[FD] = []
    try:
        for one_cpu in cpus:
            attr = perf.PerfEventAttr(
                type=perf_type, config=config, sample_period=sample_freq or sample_period
            )
            attr.flags = flags
            try:
                event_fd = perf.perf_event_open(attr, pid=pid, cpu=one_cpu)
            except OSError as err:
                if err.errno == errno.ENOENT:
                    raise AttachError(
                        f"perf event {target} does not exist on this machine", err.errno
                    ) from err
                raise attach_error(f"perf event {target} on cpu {one_cpu}", err) from err
            fds += bind_to_event(prog_fd, event_fd, f"perf event {target}")
    except BaseException:
        for fd in fds:
            fd.close()
        raise
    return FdLink("perf_event", target, fds)
