"""Program section names → program type, expected attach type, load flags and attach target.

The names are libbpf's (its ``section_defs`` table: ``tp/``, ``raw_tp/``, ``fentry/``,
``iter/``, ``usdt``, ``uprobe.multi``, ``struct_ops``, ``cgroup_skb/ingress``, ``tcx/ingress``,
...) and gobpf's (``kprobe/``, ``maps/``, ``socket…``, ``xdp…``, ``cgroup/skb``, ...). A name
that starts with ``?`` is a program libbpf does not load unless asked (autoload off); the
reader strips the ``?``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpfnb.errors import ElfError
from bpfnb.sys.constants import AttachType, ProgFlags, ProgType

__all__ = [
    "UNKNOWN_SECTION",
    "SectionKind",
    "btf_target",
    "classify",
    "known_prefixes",
    "lookup",
]


@dataclass(frozen=True)
class SectionKind:
    """What a program section name means.

    ``attach_kind`` says how to attach (``"kprobe"``, ``"tracepoint"``, ``"iter"``, ...) and
    ``attach_target`` is the rest of the name (``"syscalls/sys_enter_openat"``), maybe empty.
    ``prog_flags`` are BPF_PROG_LOAD flags (sleepable, XDP frags); ``attach_btf`` says that the
    load names its kernel target by BTF id (fentry, tp_btf, lsm, iter...).
    """

    prog_type: ProgType
    expected_attach_type: int
    attach_kind: str
    attach_target: str
    prog_flags: int = 0
    attach_btf: bool = False

    @property
    def sleepable(self) -> bool:
        return bool(self.prog_flags & ProgFlags.SLEEPABLE)

    def btf_target(self) -> tuple[str, str]:
        """The kernel BTF (name, kind) that a load names (see :func:`btf_target`)."""
        return btf_target(self.expected_attach_type, self.attach_target)


def btf_target(expected_attach_type: int, target: str) -> tuple[str, str]:
    """The kernel BTF type a program's load names, as libbpf looks it up: ``btf_trace_<tp>``
    (a TYPEDEF) for tp_btf, ``bpf_lsm_<hook>`` for lsm, ``bpf_iter_<name>`` for iter, and the
    function itself for fentry/fexit/fmod_ret."""
    if expected_attach_type == AttachType.TRACE_RAW_TP:
        return f"btf_trace_{target}", "TYPEDEF"
    if expected_attach_type in (AttachType.LSM_MAC, AttachType.LSM_CGROUP):
        return f"bpf_lsm_{target}", "FUNC"
    if expected_attach_type == AttachType.TRACE_ITER:
        return f"bpf_iter_{target}", "FUNC"
    return target, "FUNC"


@dataclass(frozen=True)
class _Rule:
    name: str
    prog_type: ProgType
    attach_type: int = 0
    kind: str = ""
    flags: int = 0
    target: bool = False  # the name may go on with "/TARGET"
    btf: bool = False  # the load names the target by its BTF id
    prefix: bool = False  # gobpf: anything that starts with the name


_T, _A = ProgType, AttachType
_S, _FRAGS = int(ProgFlags.SLEEPABLE), int(ProgFlags.XDP_HAS_FRAGS)


def _probe(name: str, attach: int, kind: str, flags: int = 0) -> _Rule:
    return _Rule(name, _T.KPROBE, attach, kind, flags, target=True)


def _tracing(name: str, attach: int, kind: str, flags: int = 0, btf: bool = True) -> _Rule:
    return _Rule(name, _T.TRACING, attach, kind, flags, target=True, btf=btf)


def _cgroup(name: str, prog_type: ProgType, attach: int) -> _Rule:
    return _Rule(name, prog_type, attach, "cgroup")


# Each name matches itself, or itself followed by "/..." (libbpf's "name+"); ``prefix`` rules
# match anything that starts with the name. The first rule that matches wins.
_RULES: tuple[_Rule, ...] = (
    _Rule("socket", _T.SOCKET_FILTER, 0, "socket", prefix=True),
    _Rule("sk_reuseport/migrate", _T.SK_REUSEPORT, _A.SK_REUSEPORT_SELECT_OR_MIGRATE),
    _Rule("sk_reuseport", _T.SK_REUSEPORT, _A.SK_REUSEPORT_SELECT),
    _probe("kprobe", 0, "kprobe"),
    _probe("uprobe", 0, "uprobe"),
    _probe("uprobe.s", 0, "uprobe", _S),
    _probe("kretprobe", 0, "kretprobe"),
    _probe("uretprobe", 0, "uretprobe"),
    _probe("uretprobe.s", 0, "uretprobe", _S),
    _probe("kprobe.multi", _A.TRACE_KPROBE_MULTI, "kprobe_multi"),
    _probe("kretprobe.multi", _A.TRACE_KPROBE_MULTI, "kretprobe_multi"),
    _probe("kprobe.session", _A.TRACE_KPROBE_SESSION, "kprobe_session"),
    _probe("uprobe.multi", _A.TRACE_UPROBE_MULTI, "uprobe_multi"),
    _probe("uretprobe.multi", _A.TRACE_UPROBE_MULTI, "uretprobe_multi"),
    _probe("uprobe.session", _A.TRACE_UPROBE_SESSION, "uprobe_session"),
    _probe("uprobe.multi.s", _A.TRACE_UPROBE_MULTI, "uprobe_multi", _S),
    _probe("uretprobe.multi.s", _A.TRACE_UPROBE_MULTI, "uretprobe_multi", _S),
    _probe("uprobe.session.s", _A.TRACE_UPROBE_SESSION, "uprobe_session", _S),
    _probe("ksyscall", 0, "ksyscall"),
    _probe("kretsyscall", 0, "kretsyscall"),
    _probe("usdt", 0, "usdt"),
    _probe("usdt.s", 0, "usdt", _S),
    _Rule("tc/ingress", _T.SCHED_CLS, _A.TCX_INGRESS, "tcx"),
    _Rule("tc/egress", _T.SCHED_CLS, _A.TCX_EGRESS, "tcx"),
    _Rule("tcx/ingress", _T.SCHED_CLS, _A.TCX_INGRESS, "tcx"),
    _Rule("tcx/egress", _T.SCHED_CLS, _A.TCX_EGRESS, "tcx"),
    _Rule("tc", _T.SCHED_CLS, 0, "tc"),
    _Rule("classifier", _T.SCHED_CLS, 0, "tc", target=True),
    _Rule("action", _T.SCHED_ACT, 0, "tc_action", target=True),
    _Rule("sched_cls", _T.SCHED_CLS, 0, "tc", target=True),  # gobpf
    _Rule("sched_act", _T.SCHED_ACT, 0, "tc_action", target=True),  # gobpf
    _Rule("netkit/primary", _T.SCHED_CLS, _A.NETKIT_PRIMARY, "netkit"),
    _Rule("netkit/peer", _T.SCHED_CLS, _A.NETKIT_PEER, "netkit"),
    _Rule("tracepoint", _T.TRACEPOINT, 0, "tracepoint", target=True),
    _Rule("tp", _T.TRACEPOINT, 0, "tracepoint", target=True),
    _Rule("tracepoint.s", _T.TRACEPOINT, 0, "tracepoint", _S, target=True),
    _Rule("tp.s", _T.TRACEPOINT, 0, "tracepoint", _S, target=True),
    _Rule("raw_tracepoint", _T.RAW_TRACEPOINT, 0, "raw_tracepoint", target=True),
    _Rule("raw_tp", _T.RAW_TRACEPOINT, 0, "raw_tracepoint", target=True),
    _Rule("raw_tracepoint.s", _T.RAW_TRACEPOINT, 0, "raw_tracepoint", _S, target=True),
    _Rule("raw_tp.s", _T.RAW_TRACEPOINT, 0, "raw_tracepoint", _S, target=True),
    _Rule("raw_tracepoint.w", _T.RAW_TRACEPOINT_WRITABLE, 0, "raw_tracepoint", target=True),
    _Rule("raw_tp.w", _T.RAW_TRACEPOINT_WRITABLE, 0, "raw_tracepoint", target=True),
    _tracing("tp_btf", _A.TRACE_RAW_TP, "tp_btf"),
    _tracing("tp_btf.s", _A.TRACE_RAW_TP, "tp_btf", _S),
    _tracing("fentry", _A.TRACE_FENTRY, "fentry"),
    _tracing("fmod_ret", _A.MODIFY_RETURN, "fmod_ret"),
    _tracing("fexit", _A.TRACE_FEXIT, "fexit"),
    _tracing("fentry.s", _A.TRACE_FENTRY, "fentry", _S),
    _tracing("fmod_ret.s", _A.MODIFY_RETURN, "fmod_ret", _S),
    _tracing("fexit.s", _A.TRACE_FEXIT, "fexit", _S),
    _tracing("fsession", _A.TRACE_FSESSION, "fsession"),
    _tracing("fsession.s", _A.TRACE_FSESSION, "fsession", _S),
    _tracing("fsession.multi", _A.TRACE_FSESSION_MULTI, "fsession_multi", btf=False),
    _tracing("fsession.multi.s", _A.TRACE_FSESSION_MULTI, "fsession_multi", _S, btf=False),
    _tracing("fentry.multi", _A.TRACE_FENTRY_MULTI, "fentry_multi", btf=False),
    _tracing("fexit.multi", _A.TRACE_FEXIT_MULTI, "fexit_multi", btf=False),
    _tracing("fentry.multi.s", _A.TRACE_FENTRY_MULTI, "fentry_multi", _S, btf=False),
    _tracing("fexit.multi.s", _A.TRACE_FEXIT_MULTI, "fexit_multi", _S, btf=False),
    _Rule("freplace", _T.EXT, 0, "freplace", target=True, btf=True),
    _Rule("lsm", _T.LSM, _A.LSM_MAC, "lsm", target=True, btf=True),
    _Rule("lsm.s", _T.LSM, _A.LSM_MAC, "lsm", _S, target=True, btf=True),
    _Rule("lsm_cgroup", _T.LSM, _A.LSM_CGROUP, "lsm_cgroup", target=True, btf=True),
    _tracing("iter", _A.TRACE_ITER, "iter"),
    _tracing("iter.s", _A.TRACE_ITER, "iter", _S),
    _Rule("syscall", _T.SYSCALL, 0, "", _S),
    _Rule("xdp.frags/devmap", _T.XDP, _A.XDP_DEVMAP, "xdp", _FRAGS),
    _Rule("xdp/devmap", _T.XDP, _A.XDP_DEVMAP, "xdp"),
    _Rule("xdp.frags/cpumap", _T.XDP, _A.XDP_CPUMAP, "xdp", _FRAGS),
    _Rule("xdp/cpumap", _T.XDP, _A.XDP_CPUMAP, "xdp"),
    _Rule("xdp.frags", _T.XDP, _A.XDP, "xdp", _FRAGS),
    _Rule("xdp", _T.XDP, _A.XDP, "xdp", prefix=True),  # gobpf: xdp_anything
    _Rule("perf_event", _T.PERF_EVENT, 0, "perf_event"),
    _Rule("lwt_in", _T.LWT_IN, 0, "lwt"),
    _Rule("lwt_out", _T.LWT_OUT, 0, "lwt"),
    _Rule("lwt_xmit", _T.LWT_XMIT, 0, "lwt"),
    _Rule("lwt_seg6local", _T.LWT_SEG6LOCAL, 0, "lwt"),
    _Rule("sockops", _T.SOCK_OPS, _A.CGROUP_SOCK_OPS, "cgroup"),
    _Rule("sk_skb/stream_parser", _T.SK_SKB, _A.SK_SKB_STREAM_PARSER, "sockmap"),
    _Rule("sk_skb/stream_verdict", _T.SK_SKB, _A.SK_SKB_STREAM_VERDICT, "sockmap"),
    _Rule("sk_skb/verdict", _T.SK_SKB, _A.SK_SKB_VERDICT, "sockmap"),
    _Rule("sk_skb", _T.SK_SKB, 0, "sockmap"),
    _Rule("sk_msg", _T.SK_MSG, _A.SK_MSG_VERDICT, "sockmap"),
    _Rule("lirc_mode2", _T.LIRC_MODE2, _A.LIRC_MODE2, "lirc"),
    _Rule("flow_dissector", _T.FLOW_DISSECTOR, _A.FLOW_DISSECTOR, "netns"),
    _cgroup("cgroup_skb/ingress", _T.CGROUP_SKB, _A.CGROUP_INET_INGRESS),
    _cgroup("cgroup_skb/egress", _T.CGROUP_SKB, _A.CGROUP_INET_EGRESS),
    _cgroup("cgroup/skb", _T.CGROUP_SKB, 0),
    _cgroup("cgroup/sock_create", _T.CGROUP_SOCK, _A.CGROUP_INET_SOCK_CREATE),
    _cgroup("cgroup/sock_release", _T.CGROUP_SOCK, _A.CGROUP_INET_SOCK_RELEASE),
    _cgroup("cgroup/sock", _T.CGROUP_SOCK, _A.CGROUP_INET_SOCK_CREATE),
    _cgroup("cgroup/post_bind4", _T.CGROUP_SOCK, _A.CGROUP_INET4_POST_BIND),
    _cgroup("cgroup/post_bind6", _T.CGROUP_SOCK, _A.CGROUP_INET6_POST_BIND),
    _cgroup("cgroup/bind4", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_BIND),
    _cgroup("cgroup/bind6", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_BIND),
    _cgroup("cgroup/connect4", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_CONNECT),
    _cgroup("cgroup/connect6", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_CONNECT),
    _cgroup("cgroup/connect_unix", _T.CGROUP_SOCK_ADDR, _A.CGROUP_UNIX_CONNECT),
    _cgroup("cgroup/sendmsg4", _T.CGROUP_SOCK_ADDR, _A.CGROUP_UDP4_SENDMSG),
    _cgroup("cgroup/sendmsg6", _T.CGROUP_SOCK_ADDR, _A.CGROUP_UDP6_SENDMSG),
    _cgroup("cgroup/sendmsg_unix", _T.CGROUP_SOCK_ADDR, _A.CGROUP_UNIX_SENDMSG),
    _cgroup("cgroup/recvmsg4", _T.CGROUP_SOCK_ADDR, _A.CGROUP_UDP4_RECVMSG),
    _cgroup("cgroup/recvmsg6", _T.CGROUP_SOCK_ADDR, _A.CGROUP_UDP6_RECVMSG),
    _cgroup("cgroup/recvmsg_unix", _T.CGROUP_SOCK_ADDR, _A.CGROUP_UNIX_RECVMSG),
    _cgroup("cgroup/getpeername4", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_GETPEERNAME),
    _cgroup("cgroup/getpeername6", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_GETPEERNAME),
    _cgroup("cgroup/getpeername_unix", _T.CGROUP_SOCK_ADDR, _A.CGROUP_UNIX_GETPEERNAME),
    _cgroup("cgroup/getsockname4", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET4_GETSOCKNAME),
    _cgroup("cgroup/getsockname6", _T.CGROUP_SOCK_ADDR, _A.CGROUP_INET6_GETSOCKNAME),
    _cgroup("cgroup/getsockname_unix", _T.CGROUP_SOCK_ADDR, _A.CGROUP_UNIX_GETSOCKNAME),
    _cgroup("cgroup/sysctl", _T.CGROUP_SYSCTL, _A.CGROUP_SYSCTL),
    _cgroup("cgroup/getsockopt", _T.CGROUP_SOCKOPT, _A.CGROUP_GETSOCKOPT),
    _cgroup("cgroup/setsockopt", _T.CGROUP_SOCKOPT, _A.CGROUP_SETSOCKOPT),
    _cgroup("cgroup/dev", _T.CGROUP_DEVICE, _A.CGROUP_DEVICE),
    _Rule("struct_ops", _T.STRUCT_OPS, 0, "struct_ops", target=True),
    _Rule("struct_ops.s", _T.STRUCT_OPS, 0, "struct_ops", _S, target=True),
    _Rule("sk_lookup", _T.SK_LOOKUP, _A.SK_LOOKUP, "netns"),
    _Rule("netfilter", _T.NETFILTER, _A.NETFILTER, "netfilter"),
)


def _matches(section: str, rule: _Rule) -> str | None:
    # The attach target (what follows "name/"), or None when the rule does not apply.
    name = rule.name
    if rule.prefix:
        return section[len(name) :].lstrip("/") if section.startswith(name) else None
    if section.startswith(name + "/"):
        return section[len(name) + 1 :]
    return "" if section == name else None


UNKNOWN_SECTION = (
    "unknown program section: its name gives no program type (expected a name such as "
    "kprobe/FN, tracepoint/CAT/NAME, raw_tp/NAME, socket, xdp, tc, cgroup_skb/ingress, "
    "fentry/FN, iter/task; bpfnb.elf.sections.known_prefixes() lists them all)"
)


def lookup(section: str) -> SectionKind | None:
    """What a program section name means (without a leading ``?``), or None when it is not a
    known name."""
    for rule in _RULES:
        target = _matches(section, rule)
        if target is not None:
            return SectionKind(
                rule.prog_type, int(rule.attach_type), rule.kind, target, rule.flags, rule.btf
            )
    return None


def classify(section: str) -> SectionKind:
    """The program type, expected attach type and attach point of a program section.

    An unknown name raises :class:`ElfError` naming the section.
    """
    kind = lookup(section.removeprefix("?"))
    if kind is None:
        raise ElfError(UNKNOWN_SECTION, section, 0)
    return kind


def known_prefixes() -> list[str]:
    """Every section name (or prefix) that :func:`classify` understands; ``name/`` when a
    target may follow."""
    return [rule.name + ("/" if rule.target else "") for rule in _RULES]
