"""Which attach call each ELF section and each bcc function name leads to (the link functions
replaced by recorders): both doors end in the same bpfnb.link calls."""

from __future__ import annotations

import platform

import pytest

from bpfnb.bcc.conventions import convention
from bpfnb.elf.sections import classify
from bpfnb.errors import AttachError
from bpfnb.link import auto as attach_module
from bpfnb.sys.constants import ProgType


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    made: list[tuple] = []

    def recorder(name: str):
        def record(*args, **kwargs):
            made.append((name, args, kwargs))
            return f"link:{name}"

        return record

    for name in (
        "attach_tracepoint",
        "attach_raw_tracepoint",
        "attach_kprobe",
        "attach_uprobe",
        "attach_fentry",
    ):
        monkeypatch.setattr(attach_module, name, recorder(name))
    return made


def attach(section: str):
    kind = classify(section)
    return attach_module.attach_by_kind(7, kind.attach_kind, kind.attach_target)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "tracepoint/syscalls/sys_enter_openat",
            ("attach_tracepoint", (7, "syscalls/sys_enter_openat"), {}),
        ),
        ("tp/sched/sched_switch", ("attach_tracepoint", (7, "sched/sched_switch"), {})),
        ("raw_tracepoint/sys_enter", ("attach_raw_tracepoint", (7, "sys_enter"), {})),
        ("raw_tp/sched_switch", ("attach_raw_tracepoint", (7, "sched_switch"), {})),
        (
            "kprobe/do_sys_openat2",
            ("attach_kprobe", (7, "do_sys_openat2"), {"ret": False, "offset": 0}),
        ),
        ("kretprobe/vfs_read", ("attach_kprobe", (7, "vfs_read"), {"ret": True, "offset": 0})),
        ("kprobe/vfs_read+0x10", ("attach_kprobe", (7, "vfs_read"), {"ret": False, "offset": 16})),
        (
            "uprobe//usr/lib/libc.so.6:malloc",
            ("attach_uprobe", (7, "/usr/lib/libc.so.6", "malloc"), {"ret": False}),
        ),
        (
            "uretprobe/libc.so.6:malloc",
            ("attach_uprobe", (7, "libc.so.6", "malloc"), {"ret": True}),
        ),
        ("uprobe//bin/x:0x1234", ("attach_uprobe", (7, "/bin/x", 0x1234), {"ret": False})),
        ("fentry/do_sys_openat2", ("attach_fentry", (7, "do_sys_openat2", "fentry"), {})),
        ("fexit/vfs_read", ("attach_fentry", (7, "vfs_read", "fexit"), {})),
    ],
)
def test_sections_that_name_their_target(calls: list, section: str, expected: tuple) -> None:
    assert attach(section) == f"link:{expected[0]}"
    assert calls == [expected]


def test_ksyscall_uses_the_architecture_prefix(calls: list) -> None:
    attach("ksyscall/openat")
    func = calls[0][1][1]
    if platform.machine() == "x86_64":
        assert func == "__x64_sys_openat"
    assert func.endswith("openat")


@pytest.mark.parametrize(
    "section", ["socket", "xdp", "cgroup_skb/egress", "perf_event", "uprobe", "tc"]
)
def test_sections_without_a_target_wait_for_explicit_calls(calls: list, section: str) -> None:
    assert attach(section) is None
    assert calls == []


def test_a_uprobe_target_without_a_symbol_is_a_clear_error(calls: list) -> None:
    with pytest.raises(AttachError, match="is not 'path:symbol'"):
        attach("uprobe/just_a_name")


@pytest.mark.parametrize(
    ("function", "prog_type", "expected"),
    [
        (
            "tracepoint__syscalls__sys_enter_openat",
            ProgType.TRACEPOINT,
            ("attach_tracepoint", (7, "syscalls:sys_enter_openat"), {}),
        ),
        (
            "raw_tracepoint__sched_switch",
            ProgType.RAW_TRACEPOINT,
            ("attach_raw_tracepoint", (7, "sched_switch"), {}),
        ),
        (
            "kprobe__do_sys_openat2",
            ProgType.KPROBE,
            ("attach_kprobe", (7, "do_sys_openat2"), {"ret": False, "offset": 0}),
        ),
        (
            "kretprobe__vfs_read",
            ProgType.KPROBE,
            ("attach_kprobe", (7, "vfs_read"), {"ret": True, "offset": 0}),
        ),
        (
            "kfunc__do_sys_openat2",
            ProgType.TRACING,
            ("attach_fentry", (7, "do_sys_openat2", "fentry"), {}),
        ),
        ("kretfunc__vfs_read", ProgType.TRACING, ("attach_fentry", (7, "vfs_read", "fexit"), {})),
        ("lsm__file_open", ProgType.LSM, ("attach_fentry", (7, "file_open", "lsm"), {})),
    ],
)
def test_bcc_names_lead_to_the_same_calls(
    calls: list, function: str, prog_type: ProgType, expected: tuple
) -> None:
    found = convention(function)
    assert found is not None and found[0] == prog_type
    assert attach_module.attach_by_kind(7, found[1], found[2]) == f"link:{expected[0]}"
    assert calls == [expected]


@pytest.mark.parametrize("function", ["kprobe__sys_openat", "kprobe____x64_sys_openat"])
def test_bcc_syscall_kprobes_are_ksyscalls(calls: list, function: str) -> None:
    assert convention(function) == (ProgType.KPROBE, "ksyscall", "openat")
    assert convention(function.replace("kprobe", "kretprobe", 1)) == (
        ProgType.KPROBE,
        "kretsyscall",
        "openat",
    )


@pytest.mark.parametrize("function", ["count_getppid", "tracepoint__nocategory", "do__thing"])
def test_other_bcc_functions_wait_for_explicit_calls(function: str) -> None:
    assert convention(function) is None
