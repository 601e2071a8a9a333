"""Attach a program where its name says: ``(kind, target)`` pairs that both doors produce.

An ELF section such as ``tracepoint/syscalls/sys_enter_openat`` and a bcc function such as
``tracepoint__syscalls__sys_enter_openat`` both name the kind ``"tracepoint"`` and the target
``"syscalls/sys_enter_openat"``; :func:`attach_by_kind` makes the link. Kinds attached this way:

- ``tracepoint`` (``cat/name`` or ``cat:name``), ``raw_tracepoint`` (``name``)
- ``kprobe``/``kretprobe`` (``func[+offset]``), ``ksyscall``/``kretsyscall`` (a syscall name)
- ``uprobe``/``uretprobe`` (``path:symbol[+off]`` or ``path:0xoffset``)
- ``fentry``, ``fexit``, ``fmod_ret``, ``tp_btf``, ``lsm`` (the target was named at load)
- ``iter`` (an iterator, named at load: read it with ``link.read()``)

Every other kind (socket filters, XDP, cgroup programs, perf events, a bare ``uprobe``) waits
for an explicit attach call, as its target is not in its name.
"""

from __future__ import annotations

from bpfnb.errors import AttachError
from bpfnb.link.fdlink import FdLink
from bpfnb.link.fentry import attach_fentry
from bpfnb.link.iter import attach_iter
from bpfnb.link.kprobe import attach_kprobe
from bpfnb.link.raw_tracepoint import attach_raw_tracepoint
from bpfnb.link.tracepoint import attach_tracepoint
from bpfnb.link.uprobe import attach_uprobe
from bpfnb.sys import features, kallsyms

__all__ = ["AUTO_KINDS", "TRACING_KINDS", "attach_by_kind", "syscall_function"]

TRACING_KINDS = ("fentry", "fexit", "fmod_ret", "tp_btf", "lsm")
AUTO_KINDS = (
    "tracepoint",
    "raw_tracepoint",
    "kprobe",
    "kretprobe",
    "ksyscall",
    "kretsyscall",
    "uprobe",
    "uretprobe",
    "iter",
    *TRACING_KINDS,
)


def syscall_function(name: str) -> str:
    """The kernel function behind syscall ``name`` (``"openat"`` → ``"__x64_sys_openat"``).

    Kernels since 4.17 (commit d5a00528b58c) enter syscalls through per-architecture wrappers;
    older ones, and architectures without wrappers, through ``sys_<name>``.
    """
    name = name.removeprefix("sys_")
    prefixed = (features.syscall_wrapper_prefix() or "sys_") + name
    try:
        known = kallsyms.lookup([prefixed, f"sys_{name}"])
    except OSError:
        return prefixed
    if prefixed not in known and f"sys_{name}" in known:
        return f"sys_{name}"
    return prefixed


def _split_uprobe_target(target: str) -> tuple[str, str | int]:
    # "path:symbol[+off]" or "path:0x1234" (libbpf); the path may itself hold no colon.
    path, sep, where = target.rpartition(":")
    if not sep or not path or not where:
        raise AttachError(
            f"uprobe target {target!r} is not 'path:symbol': attach it with "
            "obj.attach_uprobe(prog, path_or_lib, symbol)"
        )
    try:
        return path, int(where, 16) if where.lower().startswith("0x") else int(where)
    except ValueError:
        return path, where


def attach_by_kind(prog_fd: int, kind: str, target: str) -> FdLink | None:
    """Attach ``prog_fd`` as ``kind`` at ``target``; None when the kind needs an explicit call
    (or names no target)."""
    if kind not in AUTO_KINDS or (not target and kind not in TRACING_KINDS):
        return None
    if kind == "iter":
        return attach_iter(prog_fd, target)
    if kind == "tracepoint":
        return attach_tracepoint(prog_fd, target)
    if kind == "raw_tracepoint":
        return attach_raw_tracepoint(prog_fd, target)
    if kind in ("kprobe", "kretprobe"):
        func, _, offset = target.partition("+")
        return attach_kprobe(prog_fd, func, ret=kind == "kretprobe", offset=int(offset or "0", 0))
    if kind in ("ksyscall", "kretsyscall"):
        return attach_kprobe(prog_fd, syscall_function(target), ret=kind == "kretsyscall")
    if kind in ("uprobe", "uretprobe"):
        path, where = _split_uprobe_target(target)
        return attach_uprobe(prog_fd, path, where, ret=kind == "uretprobe")
    return attach_fentry(prog_fd, target, kind)
