"""Section names → program type, expected attach type and attach target."""

from __future__ import annotations

import pytest

from bpfnb.elf.sections import classify, known_prefixes
from bpfnb.errors import ElfError
from bpfnb.sys.constants import AttachType, ProgFlags, ProgType


@pytest.mark.parametrize(
    "section, prog_type, attach_type, kind, target",
    [
        # gobpf's names
        ("kprobe/do_sys_open", ProgType.KPROBE, 0, "kprobe", "do_sys_open"),
        ("kretprobe/do_sys_open", ProgType.KPROBE, 0, "kretprobe", "do_sys_open"),
        ("uprobe/bash:readline", ProgType.KPROBE, 0, "uprobe", "bash:readline"),
        ("uretprobe/x", ProgType.KPROBE, 0, "uretprobe", "x"),
        ("tracepoint/syscalls/sys_enter_openat", ProgType.TRACEPOINT, 0, "tracepoint",
         "syscalls/sys_enter_openat"),
        ("socket", ProgType.SOCKET_FILTER, 0, "socket", ""),
        ("socket_filter_1", ProgType.SOCKET_FILTER, 0, "socket", "_filter_1"),
        ("cgroup/skb", ProgType.CGROUP_SKB, 0, "cgroup", ""),
        ("cgroup/sock", ProgType.CGROUP_SOCK, AttachType.CGROUP_INET_SOCK_CREATE, "cgroup", ""),
        ("xdp", ProgType.XDP, AttachType.XDP, "xdp", ""),
        ("xdp_prog", ProgType.XDP, AttachType.XDP, "xdp", "_prog"),
        ("sched_cls/ingress", ProgType.SCHED_CLS, 0, "tc", "ingress"),
        ("sched_act/x", ProgType.SCHED_ACT, 0, "tc_action", "x"),
        ("perf_event", ProgType.PERF_EVENT, 0, "perf_event", ""),
        # libbpf's names
        ("tp/sched/sched_switch", ProgType.TRACEPOINT, 0, "tracepoint", "sched/sched_switch"),
        ("raw_tracepoint/sys_enter", ProgType.RAW_TRACEPOINT, 0, "raw_tracepoint", "sys_enter"),
        ("raw_tp/sys_exit", ProgType.RAW_TRACEPOINT, 0, "raw_tracepoint", "sys_exit"),
        ("cgroup_skb/ingress", ProgType.CGROUP_SKB, AttachType.CGROUP_INET_INGRESS, "cgroup", ""),
        ("cgroup_skb/egress", ProgType.CGROUP_SKB, AttachType.CGROUP_INET_EGRESS, "cgroup", ""),
        ("tc", ProgType.SCHED_CLS, 0, "tc", ""),
        ("classifier", ProgType.SCHED_CLS, 0, "tc", ""),
        ("fentry/do_unlinkat", ProgType.TRACING, AttachType.TRACE_FENTRY, "fentry", "do_unlinkat"),
        ("fexit/do_unlinkat", ProgType.TRACING, AttachType.TRACE_FEXIT, "fexit", "do_unlinkat"),
        ("lsm/file_open", ProgType.LSM, AttachType.LSM_MAC, "lsm", "file_open"),
        ("tp_btf/sched_switch", ProgType.TRACING, AttachType.TRACE_RAW_TP, "tp_btf",
         "sched_switch"),
        ("sockops", ProgType.SOCK_OPS, AttachType.CGROUP_SOCK_OPS, "cgroup", ""),
        ("sk_msg", ProgType.SK_MSG, AttachType.SK_MSG_VERDICT, "sockmap", ""),
        ("cgroup/connect4", ProgType.CGROUP_SOCK_ADDR, AttachType.CGROUP_INET4_CONNECT, "cgroup",
         ""),
        ("xdp/devmap", ProgType.XDP, AttachType.XDP_DEVMAP, "xdp", ""),
        ("iter/task", ProgType.TRACING, AttachType.TRACE_ITER, "iter", "task"),
        ("iter.s/task_file", ProgType.TRACING, AttachType.TRACE_ITER, "iter", "task_file"),
        ("usdt", ProgType.KPROBE, 0, "usdt", ""),
        ("usdt/libc.so.6:libc:setjmp", ProgType.KPROBE, 0, "usdt", "libc.so.6:libc:setjmp"),
        ("ksyscall/openat", ProgType.KPROBE, 0, "ksyscall", "openat"),
        ("kretsyscall/openat", ProgType.KPROBE, 0, "kretsyscall", "openat"),
        ("kprobe.multi/tcp_*", ProgType.KPROBE, AttachType.TRACE_KPROBE_MULTI, "kprobe_multi",
         "tcp_*"),
        ("uprobe.multi/bin:f*", ProgType.KPROBE, AttachType.TRACE_UPROBE_MULTI, "uprobe_multi",
         "bin:f*"),
        ("uretprobe.multi.s/b:f", ProgType.KPROBE, AttachType.TRACE_UPROBE_MULTI,
         "uretprobe_multi", "b:f"),
        ("struct_ops/dctcp_init", ProgType.STRUCT_OPS, 0, "struct_ops", "dctcp_init"),
        ("struct_ops", ProgType.STRUCT_OPS, 0, "struct_ops", ""),
        ("tcx/ingress", ProgType.SCHED_CLS, AttachType.TCX_INGRESS, "tcx", ""),
        ("tc/egress", ProgType.SCHED_CLS, AttachType.TCX_EGRESS, "tcx", ""),
        ("lsm_cgroup/socket_bind", ProgType.LSM, AttachType.LSM_CGROUP, "lsm_cgroup",
         "socket_bind"),
        ("cgroup/connect_unix", ProgType.CGROUP_SOCK_ADDR, AttachType.CGROUP_UNIX_CONNECT,
         "cgroup", ""),
        ("netfilter", ProgType.NETFILTER, AttachType.NETFILTER, "netfilter", ""),
        ("syscall", ProgType.SYSCALL, 0, "", ""),
        # libbpf's "name+": the bare name is a program whose target is given when attaching.
        ("kprobe", ProgType.KPROBE, 0, "kprobe", ""),
        ("tracepoint", ProgType.TRACEPOINT, 0, "tracepoint", ""),
        ("?tp/sched/sched_switch", ProgType.TRACEPOINT, 0, "tracepoint", "sched/sched_switch"),
    ],
)  # fmt: skip
def test_classify(section, prog_type, attach_type, kind, target):
    got = classify(section)
    assert (got.prog_type, got.expected_attach_type, got.attach_kind, got.attach_target) == (
        prog_type, attach_type, kind, target
    )  # fmt: skip


@pytest.mark.parametrize("section", ["maps/x", "text", "", "kprobes/x", "fentry_x", "iterator"])
def test_unknown_or_incomplete_names_are_reported(section):
    with pytest.raises(ElfError, match="unknown program section") as err:
        classify(section)
    assert err.value.section == section


def test_known_prefixes_cover_both_conventions():
    prefixes = set(known_prefixes())
    assert {"kprobe/", "tracepoint/", "socket", "xdp", "perf_event", "cgroup/skb"} <= prefixes
    assert {"tp/", "raw_tp/", "fentry/", "lsm/", "tc", "cgroup_skb/ingress"} <= prefixes


@pytest.mark.parametrize(
    "section, flags",
    [
        ("uprobe.s/bin:f", ProgFlags.SLEEPABLE),
        ("lsm.s/file_open", ProgFlags.SLEEPABLE),
        ("iter.s/task", ProgFlags.SLEEPABLE),
        ("syscall", ProgFlags.SLEEPABLE),
        ("xdp.frags", ProgFlags.XDP_HAS_FRAGS),
        ("xdp.frags/devmap", ProgFlags.XDP_HAS_FRAGS),
        ("uprobe/bin:f", 0),
        ("xdp", 0),
    ],
)
def test_load_flags(section, flags):
    assert classify(section).prog_flags == flags
    assert classify(section).sleepable == bool(flags & ProgFlags.SLEEPABLE)


@pytest.mark.parametrize(
    "section, name, kind",
    [
        ("tp_btf/sched_switch", "btf_trace_sched_switch", "TYPEDEF"),
        ("lsm/file_open", "bpf_lsm_file_open", "FUNC"),
        ("lsm_cgroup/socket_bind", "bpf_lsm_socket_bind", "FUNC"),
        ("iter/task", "bpf_iter_task", "FUNC"),
        ("fentry/do_unlinkat", "do_unlinkat", "FUNC"),
        ("fmod_ret.s/x", "x", "FUNC"),
    ],
)
def test_btf_targets_are_named_as_libbpf_names_them(section, name, kind):
    got = classify(section)
    assert got.attach_btf and got.btf_target() == (name, kind)


def test_only_btf_attached_kinds_name_a_btf_target():
    assert not classify("kprobe/x").attach_btf and not classify("fentry.multi/x").attach_btf
