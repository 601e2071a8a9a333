"""Every kind of section libbpf knows loads here, or the kernel's refusal is explained: one
trivial program per kind, loaded one at a time."""

from __future__ import annotations

import pytest

from bpfnb.elf import load, read
from bpfnb.errors import BpfError, KernelFeatureError
from bpfnb.sys.features import TRACING_REFUSED

# Kinds that need a BPF trampoline, which some kernels refuse (EPERM, even for root).
TRAMPOLINE = {"fentry", "fexit", "fmod_ret", "lsm", "lsm_cgroup"}


@pytest.fixture(scope="module")
def spec(clang_build):
    return read(clang_build("elf_sections"))


def test_each_section_loads_or_says_why_not(spec):
    outcomes: dict[str, str] = {}
    for name, prog in spec.programs.items():
        try:
            load(spec, programs=[name], pin=False).close()
            outcomes[prog.section] = "loaded"
        except BpfError as err:  # never a bare OSError
            assert prog.section in str(err) or f"{prog.attach_kind} " in str(err), err
            outcomes[prog.section] = f"{type(err).__name__}: {err}"
    loaded = {s for s, outcome in outcomes.items() if outcome == "loaded"}
    # Kinds any kernel with BPF links, iterators and BTF loads.
    assert {"kprobe/do_unlinkat", "uprobe", "usdt", "ksyscall/getppid", "iter/task",
            "tp_btf/sched_switch", "syscall", "socket", "xdp", "xdp.frags", "tc",
            "cgroup_skb/ingress", "sk_lookup", "raw_tp.w/sys_enter"} <= loaded  # fmt: skip
    for section, outcome in outcomes.items():
        if section.startswith(tuple(k + "/" for k in TRAMPOLINE)) and outcome != "loaded":
            assert outcome == f"KernelFeatureError: {section.replace('/', ' ')}: {TRACING_REFUSED}"
    assert outcomes["freplace/anything"].startswith("KernelFeatureError: section 'freplace/")


def test_a_trampoline_refusal_is_consistent(spec):
    """Where fentry is refused, fexit and fmod_ret are too, with the same explanation."""
    refused = []
    for name, prog in spec.programs.items():
        if prog.attach_kind in ("fentry", "fexit", "fmod_ret"):
            try:
                load(spec, programs=[name], pin=False).close()
            except KernelFeatureError as err:
                refused.append(err.reason == TRACING_REFUSED)
    assert all(refused) and len(refused) in (0, 3)
