"""bcc's function-name conventions: where a function such as ``kprobe__do_sys_openat2`` attaches.

Each convention maps onto the program type bcc loads it with and the same ``(kind, target)`` an
ELF section gives, so :func:`bpfnb.link.attach_by_kind` attaches both alike. bcc's macros expand
to these names: ``TRACEPOINT_PROBE(cat, name)`` is ``tracepoint__cat__name``,
``RAW_TRACEPOINT_PROBE(name)`` is ``raw_tracepoint__name``, ``KFUNC_PROBE(f)`` is ``kfunc__f``.
"""

from __future__ import annotations

from bpfnb.sys.constants import ProgType

__all__ = ["Convention", "convention"]

Convention = tuple[ProgType, str, str]  # (program type, attach kind, attach target)

# The prefixes bcc treats as a syscall's kernel function (bcc's ``fix_syscall_fnname``).
_SYSCALL_PREFIXES = (
    "__x64_sys_",
    "__x32_compat_sys_",
    "__ia32_compat_sys_",
    "__arm64_sys_",
    "__s390x_sys_",
    "__s390_sys_",
    "sys_",
)


def _kprobe(target: str, ret: bool) -> Convention:
    # bcc attaches kprobe__sys_openat to the running kernel's own syscall function, as libbpf's
    # ksyscall/ sections do.
    for prefix in _SYSCALL_PREFIXES:
        if target.startswith(prefix):
            kind = "kretsyscall" if ret else "ksyscall"
            return ProgType.KPROBE, kind, target[len(prefix) :]
    return ProgType.KPROBE, "kretprobe" if ret else "kprobe", target


def convention(function: str) -> Convention | None:
    """(program type, attach kind, target) of a function bcc would attach by its name, or None
    for a function that is attached explicitly."""
    prefix, sep, rest = function.partition("__")
    if not sep or not rest:
        return None
    if prefix in ("kprobe", "kretprobe"):
        return _kprobe(rest, ret=prefix == "kretprobe")
    if prefix == "tracepoint":
        category, sep, name = rest.partition("__")
        return (ProgType.TRACEPOINT, "tracepoint", f"{category}:{name}") if sep else None
    if prefix == "raw_tracepoint":
        return ProgType.RAW_TRACEPOINT, "raw_tracepoint", rest
    if prefix == "kfunc":
        return ProgType.TRACING, "fentry", rest
    if prefix == "kretfunc":
        return ProgType.TRACING, "fexit", rest
    if prefix == "lsm":
        return ProgType.LSM, "lsm", rest
    return None
