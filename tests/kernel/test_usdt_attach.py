"""``attach_usdt`` on a workload built here: exact counts at every site, semaphores raised by
the kernel only where the probe is, and argument specs read back by a BPF program."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import bpfnb
from bpfnb.errors import AttachError
from bpfnb.sys.constants import ProgType
from bpfnb.usdt import attach_usdt, find_sites, pack_spec
from tests.usdt_workload import ARGS, build_workload, start_waiting

COUNTER = """
BPF_ARRAY(calls, u64, 1);
int on_probe(struct pt_regs *ctx) {
    calls.increment(0);
    return 0;
}
"""

# Reads each argument as libbpf's bpf_usdt_arg() does, from a spec packed by bpfnb.
ARG_READER = """
struct arg_spec { u64 val_off; u32 arg_type; s16 reg_off; u8 arg_signed; u8 arg_bitshift; };
struct usdt_spec { struct arg_spec args[12]; u64 usdt_cookie; s16 arg_cnt; };
BPF_ARRAY(specs, struct usdt_spec, 1);
BPF_ARRAY(values, s64, 12);
BPF_ARRAY(count, s64, 1);

int on_probe(struct pt_regs *ctx) {
    int zero = 0;
    struct usdt_spec *spec = specs.lookup(&zero);
    if (!spec)
        return 0;
    s64 n = spec->arg_cnt;
    count.update(&zero, &n);
    #pragma unroll
    for (int i = 0; i < 12; i++) {
        if (i >= spec->arg_cnt)
            break;
        struct arg_spec *arg = &spec->args[i];
        u64 val = 0;
        if (arg->arg_type == 0) {
            val = arg->val_off;
        } else {
            bpf_probe_read_kernel(&val, sizeof(val), (void *)ctx + arg->reg_off);
            if (arg->arg_type == 2)
                bpf_probe_read_user(&val, sizeof(val), (void *)(val + arg->val_off));
        }
        val <<= arg->arg_bitshift;
        if (arg->arg_signed)
            val = (u64)((s64)val >> arg->arg_bitshift);
        else
            val >>= arg->arg_bitshift;
        int key = i;
        s64 out = val;
        values.update(&key, &out);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def workload(tmp_path_factory) -> Path:
    return build_workload(tmp_path_factory.mktemp("usdt"), "-O2")


@pytest.fixture
def counter(bcc_ok: None):
    obj = bpfnb.compile(COUNTER, attach=False, name="usdt_counter")
    yield obj
    obj.close()


def _calls(obj) -> int:
    return int(obj.maps["calls"][0])


def _run(workload: Path, n: int) -> tuple[int, int]:
    out = subprocess.run([str(workload), str(n)], capture_output=True, text=True, check=True)
    gated, semaphore = out.stdout.split()
    return int(gated), int(semaphore)


def test_every_site_of_a_probe_counts_exactly(counter, workload: Path) -> None:
    links = counter.attach_usdt("on_probe", str(workload), "bpfnbtest", "tick")
    assert len(links) == len(find_sites(str(workload), "bpfnbtest", "tick")) == 2
    assert {link.kind for link in links} == {"usdt"}
    assert all(link.target.startswith(f"bpfnbtest:tick@{workload}:0x") for link in links)
    _run(workload, 137)
    assert _calls(counter) == 2 * 137
    for link in links:
        link.close()
    _run(workload, 11)
    assert _calls(counter) == 2 * 137


@pytest.mark.parametrize("method", ["pmu", "tracefs"])
def test_semaphore_is_raised_while_attached(counter, workload: Path, method: str) -> None:
    assert _run(workload, 50) == (0, 0)  # nobody attached: the guarded probe never fires
    prog = counter._program("on_probe", ProgType.KPROBE)  # low-level: choose the method
    [link] = attach_usdt(prog.fd, str(workload), "bpfnbtest", "gated", method=method)
    try:
        assert _run(workload, 50) == (50, 1)
        assert _calls(counter) == 50
    finally:
        link.close()
    assert _run(workload, 50) == (0, 0)
    assert _calls(counter) == 50


def test_pid_filter_raises_the_semaphore_of_that_process_only(counter, workload: Path) -> None:
    waiting = start_waiting(workload, 40)
    try:
        [link] = counter.attach_usdt(
            "on_probe", str(workload), "bpfnbtest", "gated", pid=waiting.pid
        )
        assert _run(workload, 30) == (0, 0)  # another process of the same file
        out, _ = waiting.communicate("go\n", timeout=10)
        assert out.split() == ["40", "1"]
        assert _calls(counter) == 40
        link.close()
    finally:
        if waiting.poll() is None:
            waiting.kill()


def test_unknown_probe_attaches_nothing(counter, workload: Path) -> None:
    with pytest.raises(AttachError, match="no USDT probe bpfnbtest:missing"):
        counter.attach_usdt("on_probe", str(workload), "bpfnbtest", "missing")
    assert not counter.links


@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_packed_specs_read_the_arguments(bcc_ok: None, tmp_path: Path, opt: str) -> None:
    # -O0 passes every argument through memory (N(%rbp)), -O2 mostly in registers and a $const.
    workload = build_workload(tmp_path, opt)
    [site] = find_sites(str(workload), "bpfnbtest", "args")
    expected = [-7, 250, 5_000_000_000, -1234, ARGS[4]]
    with bpfnb.compile(ARG_READER, attach=False, name="usdt_args") as obj:
        obj.maps["specs"][0] = pack_spec(site.arguments)
        [link] = obj.attach_usdt("on_probe", str(workload), "bpfnbtest", "args")
        with link:
            argv = [str(workload), "0", "x", *map(str, expected[:4])]
            subprocess.run(argv, input="go\n", capture_output=True, text=True, check=True)
        assert obj.maps["count"][0] == 5
        assert [obj.maps["values"][i] for i in range(5)] == expected, site.arguments
