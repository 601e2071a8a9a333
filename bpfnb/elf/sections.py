"""Program section names → program type, expected attach type and attach target.

The names follow gobpf (``kprobe/``, ``maps/``, ``socket…``, ``xdp…``, ``cgroup/skb``, ...) and
libbpf (``tp/``, ``raw_tp/``, ``fentry/``, ``cgroup_skb/ingress``, ``tc``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from bpfnb.errors import ElfError
from bpfnb.sys.constants import AttachType, ProgType

__all__ = ["UNKNOWN_SECTION", "SectionKind", "classify", "known_prefixes", "lookup"]


@dataclass(frozen=True)
class SectionKind:
    """What a program section name means.

    ``attach_kind`` says how to attach (``"kprobe"``, ``"tracepoint"``, ``"socket"``, ...) and
    ``attach_target`` is the rest of the name (``"syscalls/sys_enter_openat"``), maybe empty.
    """

    prog_type: ProgType
    expected_attach_type: int
    attach_kind: str
    attach_target: str


# (name, match, program type, expected attach type, attach kind). ``match`` is "exact" (the
# name, or the name followed by "/..."), "slash" (the name must be followed by "/") or "prefix"
# (gobpf's ``socket…`` and ``xdp…``: anything starting with the name). Longer names first.
_T, _A = ProgType, AttachType
_RULES: tuple[tuple[str, str, ProgType, int, str], ...] = (
    ("kprobe.multi", "slash", _T.KPROBE, _A.TRACE_KPROBE_MULTI, "kprobe_multi"),
    ("kretprobe.multi", "slash", _T.KPROBE, _A.TRACE_KPROBE_MULTI, "kretprobe_multi"),
    ("kprobe", "slash", _T.KPROBE, 0, "kprobe"),
    ("kretprobe", "slash", _T.KPROBE, 0, "kretprobe"),
    ("ksyscall", "slash", _T.KPROBE, 0, "ksyscall"),
    ("kretsyscall", "slash", _T.KPROBE, 0, "kretsyscall"),
    ("uprobe", "exact", _T.KPROBE, 0, "uprobe"),
    ("uretprobe", "exact", _T.KPROBE, 0, "uretprobe"),
    ("usdt", "exact", _T.KPROBE, 0, "usdt"),
    ("tracepoint", "slash", _T.TRACEPOINT, 0, "tracepoint"),
    ("tp", "slash", _T.TRACEPOINT, 0, "tracepoint"),
    ("raw_tracepoint.w", "slash", _T.RAW_TRACEPOINT_WRITABLE, 0, "raw_tracepoint"),
    ("raw_tp.w", "slash", _T.RAW_TRACEPOINT_WRITABLE, 0, "raw_tracepoint"),
    ("raw_tracepoint", "slash", _T.RAW_TRACEPOINT, 0, "raw_tracepoint"),
    ("raw_tp", "slash", _T.RAW_TRACEPOINT, 0, "raw_tracepoint"),
    ("tp_btf", "slash", _T.TRACING, _A.TRACE_RAW_TP, "tp_btf"),
    ("fentry", "slash", _T.TRACING, _A.TRACE_FENTRY, "fentry"),
    ("fexit", "slash", _T.TRACING, _A.TRACE_FEXIT, "fexit"),
    ("fmod_ret", "slash", _T.TRACING, _A.MODIFY_RETURN, "fmod_ret"),
    ("fentry.s", "slash", _T.TRACING, _A.TRACE_FENTRY, "fentry"),
    ("fexit.s", "slash", _T.TRACING, _A.TRACE_FEXIT, "fexit"),
    ("iter", "slash", _T.TRACING, _A.TRACE_ITER, "iter"),
    ("lsm", "slash", _T.LSM, _A.LSM_MAC, "lsm"),
    ("lsm.s", "slash", _T.LSM, _A.LSM_MAC, "lsm"),
    ("perf_event", "exact", _T.PERF_EVENT, 0, "perf_event"),
    ("socket", "prefix", _T.SOCKET_FILTER, 0, "socket"),
    ("xdp/devmap", "exact", _T.XDP, _A.XDP_DEVMAP, "xdp"),
    ("xdp/cpumap", "exact", _T.XDP, _A.XDP_CPUMAP, "xdp"),
    ("xdp.frags/devmap", "exact", _T.XDP, _A.XDP_DEVMAP, "xdp"),
    ("xdp.frags/cpumap", "exact", _T.XDP, _A.XDP_CPUMAP, "xdp"),
    ("xdp", "prefix", _T.XDP, 0, "xdp"),
    ("sched_cls", "exact", _T.SCHED_CLS, 0, "tc"),
    ("sched_act", "exact", _T.SCHED_ACT, 0, "tc_action"),
    ("classifier", "exact", _T.SCHED_CLS, 0, "tc"),
    ("action", "exact", _T.SCHED_ACT, 0, "tc_action"),
    ("tc", "exact", _T.SCHED_CLS, 0, "tc"),
    ("cgroup_skb/ingress", "exact", _T.CGROUP_SKB, _A.CGROUP_INET_INGRESS, "cgroup"),
    ("cgroup_skb/egress", "exact", _T.CGROUP_SKB, _A.CGROUP_INET_EGRESS, "cgroup"),
    ("cgroup/skb", "exact", _T.CGROUP_SKB, 0, "cgroup"),
    ("cgroup/sock_create", "exact", _T.CGROUP_SOCK, _A.CGROUP_INET_SOCK_CREATE, "cgroup"),
    ("cgroup/sock_release", "exact", _T.CGROUP_SOCK, _A.CGROUP_INET_SOCK_RELEASE, "cgroup"),
    ("cgroup/sock", "exact", _T.CGROUP_SOCK, _A.CGROUP_INET_SOCK_CREATE, "cgroup"),
    ("cgroup/post_bind4", "exact", _T.CGROUP_SOCK, _A.CGROUP_INET4_POST_BIND, "cgroup"),
    ("cgroup/post_bind6", "exact", _T.CGROUP_SOCK, _A.CGROUP_INET6_POST_BIND, "cgroup"),
    ("cgroup/dev", "exact", _T.CGROUP_DEVICE, _A.CGROUP_DEVICE, "cgroup"),
    ("cgroup/sysctl", "exact", _T.CGROUP_SYSCTL, _A.CGROUP_SYSCTL, "cgroup"),
    ("cgroup/getsockopt", "exact", _T.CGROUP_SOCKOPT, _A.CGROUP_GETSOCKOPT, "cgroup"),
    ("cgroup/setsockopt", "exact", _T.CGROUP_SOCKOPT, _A.CGROUP_SETSOCKOPT, "cgroup"),
    ("cgroup/bind4", "exact", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_BIND, "cgroup"),
    ("cgroup/bind6", "exact", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_BIND, "cgroup"),
    ("cgroup/connect4", "exact", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_CONNECT, "cgroup"),
    ("cgroup/connect6", "exact", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_CONNECT, "cgroup"),
    ("cgroup/sendmsg4", "exact", _T.CGROUP_SOCK_ADDR, _A.CGROUP_UDP4_SENDMSG, "cgroup"),
    ("cgroup/sendmsg6", "exact", _T.CGROUP_SOCK_ADDR, _A.CGROUP_UDP6_SENDMSG, "cgroup"),
    ("cgroup/recvmsg4", "exact", _T.CGROUP_SOCK_ADDR, _A.CGROUP_UDP4_RECVMSG, "cgroup"),
    ("cgroup/recvmsg6", "exact", _T.CGROUP_SOCK_ADDR, _A.CGROUP_UDP6_RECVMSG, "cgroup"),
    ("cgroup/getpeername4", "exact", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_GETPEERNAME, "cgroup"),
    ("cgroup/getpeername6", "exact", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_GETPEERNAME, "cgroup"),
    ("cgroup/getsockname4", "exact", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_GETSOCKNAME, "cgroup"),
    ("cgroup/getsockname6", "exact", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_GETSOCKNAME, "cgroup"),
    ("sockops", "exact", _T.SOCK_OPS, _A.CGROUP_SOCK_OPS, "cgroup"),
    ("sk_skb/stream_parser", "exact", _T.SK_SKB, _A.SK_SKB_STREAM_PARSER, "sockmap"),
    ("sk_skb/stream_verdict", "exact", _T.SK_SKB, _A.SK_SKB_STREAM_VERDICT, "sockmap"),
    ("sk_skb/verdict", "exact", _T.SK_SKB, _A.SK_SKB_VERDICT, "sockmap"),
    ("sk_skb", "exact", _T.SK_SKB, 0, "sockmap"),
    ("sk_msg", "exact", _T.SK_MSG, _A.SK_MSG_VERDICT, "sockmap"),
    ("sk_lookup", "exact", _T.SK_LOOKUP, _A.SK_LOOKUP, "netns"),
    ("sk_reuseport/migrate", "exact", _T.SK_REUSEPORT, _A.SK_REUSEPORT_SELECT_OR_MIGRATE, ""),
    ("sk_reuseport", "exact", _T.SK_REUSEPORT, _A.SK_REUSEPORT_SELECT, ""),
    ("flow_dissector", "exact", _T.FLOW_DISSECTOR, _A.FLOW_DISSECTOR, "netns"),
    ("lwt_in", "exact", _T.LWT_IN, 0, "lwt"),
    ("lwt_out", "exact", _T.LWT_OUT, 0, "lwt"),
    ("lwt_xmit", "exact", _T.LWT_XMIT, 0, "lwt"),
    ("lwt_seg6local", "exact", _T.LWT_SEG6LOCAL, 0, "lwt"),
    ("lirc_mode2", "exact", _T.LIRC_MODE2, _A.LIRC_MODE2, "lirc"),
    ("syscall", "exact", _T.SYSCALL, 0, ""),
)


def _matches(section: str, name: str, match: str) -> str | None:
    # The attach target (what follows "name/"), or None when the rule does not apply.
    if match == "prefix":
        if section.startswith(name):
            return section[len(name) :].lstrip("/")
        return None
    if section.startswith(name + "/"):
        return section[len(name) + 1 :]
    if match == "exact" and section == name:
        return ""
    return None


UNKNOWN_SECTION = (
    "unknown program section: its name gives no program type (expected a name such as "
    "kprobe/FN, tracepoint/CAT/NAME, raw_tp/NAME, socket, xdp, tc, cgroup_skb/ingress, "
    "fentry/FN; bpfnb.elf.sections.known_prefixes() lists them all)"
)


def lookup(section: str) -> SectionKind | None:
    """What a program section name means, or None when it is not a known name."""
    for name, match, prog_type, attach_type, kind in _RULES:
        target = _matches(section, name, match)
        if target is not None:
            return SectionKind(prog_type, int(attach_type), kind, target)
    return None


def classify(section: str) -> SectionKind:
    """The program type, expected attach type and attach point of a program section.

    An unknown name raises :class:`ElfError` naming the section.
    """
    kind = lookup(section)
    if kind is None:
        raise ElfError(UNKNOWN_SECTION, section, 0)
    return kind


def known_prefixes() -> list[str]:
    """Every section name (or prefix) that :func:`classify` understands."""
    return [name + ("/" if match == "slash" else "") for name, match, *_ in _RULES]
