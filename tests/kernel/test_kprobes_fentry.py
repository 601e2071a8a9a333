"""kprobes, kretprobes, fentry and fexit from both doors, counting opens that each test makes.

A kernel may lack them: built without CONFIG_KPROBES, or refusing BPF tracing programs. There
each test checks that the error says why. ``make test-kernels`` runs this module on other
kernels under QEMU, with ``BPFNB_EXPECT_FEATURES`` naming what that kernel offers, so that a
feature bpfnb fails to find there fails the test instead of passing as a refusal.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import bpfnb
from bpfnb import doctor
from bpfnb.doctor.trials import FENTRY_TARGET, vmlinux_function_btf_id
from bpfnb.elf.compiler import elf_cflags
from bpfnb.elf.kconfig import kernel_config
from bpfnb.errors import KernelFeatureError
from bpfnb.link import attach_kprobe, probes, sweep_stale_probes
from bpfnb.link.kprobe import kprobes_available
from bpfnb.sys import bpf
from bpfnb.sys.constants import AttachType, ProgType
from tests.conftest import need
from tests.kernel.test_link_support import EXIT_0, load

pytestmark = pytest.mark.kernels

OPENS = 23  # opens of the test's file while it exists
MISSES = 7  # opens after it is removed, each failing with ENOENT
NO_KPROBES = "CONFIG_KPROBES"
NO_TRACING = "refuses tracing programs"

BCC_OPENS = r"""
#include <uapi/linux/ptrace.h>

BPF_ARRAY(counts, u64, 3);  /* entries, returns, returns of -ENOENT */
BPF_HASH(in_open, u32, u8);  /* threads inside one of the test's opens */

static __always_inline int is_target_open(const char __user *filename)
{
    char name[64];
    char want[64] = TARGET_PATH;

    if (bpf_get_current_pid_tgid() >> 32 != TARGET_PID)
        return 0;
    if (bpf_probe_read_user_str(name, sizeof(name), filename) <= 0)
        return 0;
#pragma unroll
    for (int i = 0; i < sizeof(name); i++) {
        if (name[i] != want[i])
            return 0;
        if (name[i] == 0)
            return 1;
    }
    return 0;
}

int kprobe__do_sys_openat2(struct pt_regs *ctx, int dfd, const char __user *filename)
{
    u32 tid = bpf_get_current_pid_tgid();
    u8 one = 1;

    if (!is_target_open(filename))
        return 0;
    in_open.update(&tid, &one);
    counts.increment(0);
    return 0;
}

int kretprobe__do_sys_openat2(struct pt_regs *ctx)
{
    u32 tid = bpf_get_current_pid_tgid();

    if (!in_open.lookup(&tid))
        return 0;
    in_open.delete(&tid);
    counts.increment(1);
    if (PT_REGS_RC(ctx) == -2 /* -ENOENT */)
        counts.increment(2);
    return 0;
}
"""


# -- what this kernel should offer -----------------------------------------------------------


@functools.cache
def expect(feature: str) -> bool:
    """Whether this kernel offers ``feature`` ("kprobes" or "fentry").

    ``BPFNB_EXPECT_FEATURES`` (set by ``make test-kernels`` from the kernel's build
    configuration) decides when set. Otherwise: the kernel's configuration for kprobes (its PMU
    and tracefs files where the configuration is unreadable), and a bare ``bpf()`` load of a
    tracing program for fentry.
    """
    listed = os.environ.get("BPFNB_EXPECT_FEATURES")
    if listed is not None:
        return feature in listed.split(",")
    if feature == "kprobes":
        try:
            return kernel_config().get("CONFIG_KPROBES") == "y"
        except KernelFeatureError:
            return kprobes_available()
    btf_id = vmlinux_function_btf_id(FENTRY_TARGET)
    kind = AttachType.TRACE_FENTRY
    try:
        bpf.prog_load(
            ProgType.TRACING, EXIT_0, expected_attach_type=kind, attach_btf_id=btf_id
        ).close()
    except Exception:  # noqa: BLE001 - any refusal means "not here"
        return False
    return True


# -- the workload ----------------------------------------------------------------------------


@pytest.fixture
def target_path() -> Iterator[str]:
    """A file only this test opens; its path fits the programs' 64-byte buffer."""
    fd, path = tempfile.mkstemp(prefix="bpfnb-open-", dir="/tmp")
    os.close(fd)
    assert len(path) < 64
    yield path
    if os.path.exists(path):
        os.unlink(path)


def open_workload(path: str) -> None:
    """Open ``path`` OPENS times, then remove it and try MISSES more times (ENOENT)."""
    for _ in range(OPENS):
        os.close(os.open(path, os.O_RDONLY))
    os.unlink(path)
    for _ in range(MISSES):
        with pytest.raises(FileNotFoundError):
            os.open(path, os.O_RDONLY)


def constants(path: str) -> dict[str, object]:
    return {"target_pid": os.getpid(), "target_path": path.encode()}


def counters(obj: bpfnb.BpfObject, *names: str) -> tuple[int, ...]:
    return tuple(int(obj.maps[name][0]) for name in names)


def our_probe_events() -> list[str]:
    """This process's entries in tracefs ``kprobe_events``."""
    path = probes.events_file("kprobe")
    if path is None:
        return []
    tag = f"bpfnb_{os.getpid()}_"
    return [line for line in Path(path).read_text().splitlines() if tag in line]


@pytest.fixture
def kprobes_object(clang_build) -> Path:
    return clang_build("open_kprobes", *elf_cflags())


@pytest.fixture
def fentry_object(clang_build) -> Path:
    return clang_build("open_fentry", *elf_cflags())


def force_tracefs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make bpfnb find no kprobe PMU, as on kernels before 4.17: it writes ``kprobe_events``."""
    real = probes.pmu_type
    monkeypatch.setattr(probes, "pmu_type", lambda kind: None if kind == "kprobe" else real(kind))


# -- the bcc door ----------------------------------------------------------------------------


def test_bcc_kprobe_and_kretprobe_count_our_opens(bcc_ok: None, target_path: str) -> None:
    defines = {"TARGET_PID": os.getpid(), "TARGET_PATH": f'"{target_path}"'}
    if not expect("kprobes"):
        with pytest.raises(KernelFeatureError, match=NO_KPROBES):
            bpfnb.compile(BCC_OPENS, defines=defines)
        return
    with bpfnb.compile(BCC_OPENS, defines=defines) as obj:
        attached = {name: p.attach_points for name, p in obj.programs.items()}
        open_workload(target_path)
        counts = [int(obj.maps["counts"][i]) for i in range(3)]
    assert attached == {
        "kprobe__do_sys_openat2": ["kprobe:do_sys_openat2"],
        "kretprobe__do_sys_openat2": ["kretprobe:do_sys_openat2"],
    }
    assert counts == [OPENS + MISSES, OPENS + MISSES, MISSES]


# -- the ELF door ----------------------------------------------------------------------------


def test_elf_kprobe_sections_count_our_opens(kprobes_object: Path, target_path: str) -> None:
    if not expect("kprobes"):
        with pytest.raises(KernelFeatureError, match=NO_KPROBES):
            bpfnb.load_elf(kprobes_object, constants=constants(target_path))
        return
    with bpfnb.load_elf(kprobes_object, constants=constants(target_path)) as obj:
        attached = {name: p.attach_points for name, p in obj.programs.items()}
        open_workload(target_path)
        counts = counters(obj, "entries", "returns", "enoent_returns")
    assert attached == {
        "open_entry": ["kprobe:do_sys_openat2"],
        "open_return": ["kretprobe:do_sys_openat2"],
    }
    assert counts == (OPENS + MISSES, OPENS + MISSES, MISSES)


def test_elf_fentry_and_fexit_count_our_opens(fentry_object: Path, target_path: str) -> None:
    if not expect("fentry"):
        with pytest.raises(KernelFeatureError, match=NO_TRACING):
            bpfnb.load_elf(fentry_object, constants=constants(target_path))
        return
    with bpfnb.load_elf(fentry_object, constants=constants(target_path)) as obj:
        attached = {name: p.attach_points for name, p in obj.programs.items()}
        open_workload(target_path)
        counts = counters(obj, "fentry_calls", "fexit_calls", "fexit_enoent")
    assert attached == {
        "open_fentry": ["fentry:do_sys_openat2"],
        "open_fexit": ["fexit:do_sys_openat2"],
    }
    assert counts == (OPENS + MISSES, OPENS + MISSES, MISSES)


# -- bpfnb.link: the kprobe PMU, the tracefs fallback, the sweep ------------------------------


@pytest.mark.parametrize("method", ["pmu", "tracefs"])
def test_attach_kprobe_by_pmu_and_by_tracefs(
    kprobes_object: Path, target_path: str, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if method == "tracefs":
        force_tracefs(monkeypatch)
    with bpfnb.load_elf(kprobes_object, constants=constants(target_path), attach=False) as obj:
        entry_fd, return_fd = obj.programs["open_entry"].fd, obj.programs["open_return"].fd
        if not expect("kprobes"):
            with pytest.raises(KernelFeatureError, match=NO_KPROBES):
                attach_kprobe(entry_fd, "do_sys_openat2")
            return
        with (
            attach_kprobe(entry_fd, "do_sys_openat2") as entry,
            attach_kprobe(return_fd, "do_sys_openat2", ret=True) as ret,
        ):
            events = our_probe_events()
            open_workload(target_path)
            counts = counters(obj, "entries", "returns", "enoent_returns")
        assert entry.closed and ret.closed
        assert our_probe_events() == []
    assert counts == (OPENS + MISSES, OPENS + MISSES, MISSES)
    assert (entry.kind, ret.kind) == ("kprobe", "kretprobe")
    if method == "pmu":
        assert events == []
    else:
        assert [line[0] for line in events] == ["p", "r"]
        assert all("do_sys_openat2" in line for line in events)


def _attach_in_child(write_fd: int) -> None:
    # Runs in a forked child: attach through tracefs, report, and wait to be killed.
    try:
        prog = load(ProgType.KPROBE, EXIT_0)
        link = attach_kprobe(prog.fileno(), "do_sys_openat2")  # kept: dropping it detaches
        message = f"attached {link.kind}"
    except BaseException as err:  # noqa: BLE001 - reported to the parent
        message = f"{type(err).__name__}: {err}"
    os.write(write_fd, message.encode())
    time.sleep(60)  # the parent kills it long before; a bound in case the parent died


def test_sweep_removes_the_kprobe_of_a_killed_process(monkeypatch: pytest.MonkeyPatch) -> None:
    force_tracefs(monkeypatch)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            _attach_in_child(write_fd)
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        message = os.read(read_fd, 4096).decode()
    finally:
        os.close(read_fd)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    if not expect("kprobes"):
        assert message.startswith("KernelFeatureError") and NO_KPROBES in message
        return
    assert message == "attached kprobe"
    dead = f"kprobes/bpfnb_{pid}_"
    events = Path(probes.events_file("kprobe") or "")
    assert dead in events.read_text()  # left behind: SIGKILL gave it no chance to clean up
    with load(ProgType.KPROBE, EXIT_0) as prog, attach_kprobe(prog.fileno(), "do_sys_openat2"):
        ours = our_probe_events()
        removed = sweep_stale_probes()
        assert our_probe_events() == ours != []  # a live process's probe stays
    assert len([entry for entry in removed if entry.startswith(dead)]) == 1
    assert dead not in events.read_text()


# -- the doctor ------------------------------------------------------------------------------


def test_doctor_reports_kprobes_and_fentry() -> None:
    report = doctor.run()
    kprobe = report.get("attach points", "kprobe")
    fentry = report.get("attach points", "fentry")
    tracing = report.get("program types", "tracing (fentry)")
    assert kprobe is not None and fentry is not None and tracing is not None
    if expect("kprobes"):
        assert (kprobe.status, kprobe.why) == ("ok", "attached to do_sys_openat2")
    else:
        assert kprobe.status == "unavailable" and NO_KPROBES in kprobe.why
    if expect("fentry"):
        assert (fentry.status, fentry.why) == ("ok", "attached to do_sys_openat2")
        assert tracing.status == "ok"
    else:
        assert fentry.status == tracing.status == "unavailable"
        assert "refuses tracing programs" in fentry.why


# -- the leak check --------------------------------------------------------------------------


def _bpftool(kind: str) -> list[dict]:
    out = subprocess.run(["bpftool", "-j", kind, "list"], capture_output=True, text=True)
    return json.loads(out.stdout or "[]")


def _links_to(ids: set[int]) -> list[str]:
    return sorted(link["type"] for link in _bpftool("link") if link.get("prog_id") in ids)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _round(
    kprobes_object: Path, fentry_object: Path, path: str, tracefs: bool, check_links: bool
) -> set[int]:
    """Load both objects, attach every program (or see each refusal), open ``path`` once and
    count it, close; returns the ids of the programs loaded."""
    with contextlib.ExitStack() as stack:
        kp = stack.enter_context(
            bpfnb.load_elf(kprobes_object, constants=constants(path), attach=False)
        )
        if expect("kprobes"):
            kp.attach()
            assert len(our_probe_events()) == (2 if tracefs else 0)
        else:
            with pytest.raises(KernelFeatureError, match=NO_KPROBES):
                kp.attach()
        objects = [kp]
        if expect("fentry"):
            fentry = bpfnb.load_elf(fentry_object, constants=constants(path))
            objects.append(stack.enter_context(fentry))
        else:
            with pytest.raises(KernelFeatureError, match=NO_TRACING):
                bpfnb.load_elf(fentry_object, constants=constants(path))
        os.close(os.open(path, os.O_RDONLY))
        if expect("kprobes"):
            assert counters(kp, "entries", "returns") == (1, 1)
        if expect("fentry"):
            assert counters(objects[1], "fentry_calls", "fexit_calls") == (1, 1)
        ids = {prog.id for obj in objects for prog in obj.programs.values()}
        if check_links:
            # A perf link per kprobe (Linux 5.15) and a tracing link per fentry/fexit program.
            kprobe_links = ["perf_event"] * 2 if expect("kprobes") else []
            fentry_links = ["tracing"] * 2 if expect("fentry") else []
            assert _links_to(ids) == sorted(kprobe_links + fentry_links)
    return ids


def test_no_leaks_after_100_load_attach_close_rounds(
    kprobes_object: Path, fentry_object: Path, target_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    need(shutil.which("bpftool") is not None, "bpftool is not installed")
    fds, events = _open_fds(), our_probe_events()
    loaded: set[int] = set()
    for round_ in range(100):
        tracefs = round_ % 2 == 1  # every other round through a kprobe_events entry
        with monkeypatch.context() as patch:
            if tracefs:
                force_tracefs(patch)
            loaded |= _round(kprobes_object, fentry_object, target_path, tracefs, round_ < 2)
    assert len(loaded) == 100 * (4 if expect("fentry") else 2)
    assert [p["id"] for p in _bpftool("prog") if p["id"] in loaded] == []
    assert _links_to(loaded) == []
    assert our_probe_events() == events == []
    assert _open_fds() == fds
