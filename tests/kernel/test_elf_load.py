"""bpfnb.elf.load: clang-built objects become maps and programs in the kernel."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest

import bpfnb
from bpfnb.doctor.trials import vmlinux_function_btf_id
from bpfnb.elf import load, load_elf, read
from bpfnb.errors import AttachError, KernelFeatureError, VerifierError
from bpfnb.link import attach_tracepoint
from bpfnb.sys import bpf
from bpfnb.sys.constants import AttachType, ProgType
from bpfnb.sys.testrun import prog_test_run
from tests.conftest import need

PACKET = bytes(14) + bytes([0x45]) + bytes(49)  # an Ethernet frame holding an IPv4 header


def bpftool(*args: str) -> dict:
    need(shutil.which("bpftool") is not None, "bpftool is not installed")
    out = subprocess.run(["bpftool", *args, "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def map_id(m) -> int:
    return int(bpf.map_info(m.fd).id)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("debug", ["-g", "-g0"])
def test_gobpf_dummy_object_loads_every_map_and_program(clang_build, debug):
    path = clang_build("elf_gobpf_dummy", debug)
    expected_maps = {
        "dummy_hash": ("hash", 4, 8, 128),
        "dummy_array": ("array", 4, 8, 128),
        "dummy_prog_array": ("prog_array", 4, 4, 128),
        "dummy_percpu_hash": ("percpu_hash", 4, 8, 128),
        "dummy_percpu_array": ("percpu_array", 4, 8, 128),
        "dummy_stack_trace": ("stack_trace", 4, 1016, 128),
        "dummy_pinned": ("hash", 4, 8, 16),
    }
    expected_progs = {
        "kprobe__dummy": "kprobe",
        "kretprobe__dummy": "kprobe",
        "uprobe__dummy": "kprobe",
        "uretprobe__dummy": "kprobe",
        "tracepoint__raw_sys_enter": "tracepoint",
        "socket__dummy": "socket_filter",
        "cgroup_skb__dummy": "cgroup_skb",
        "cgroup_sock__dummy": "cgroup_sock",
        "xdp__dummy": "xdp",
        "perf_event__dummy": "perf_event",
    }
    before = open_fds()
    obj = load(path, pin=False)  # loading, not pinning, is what is tested here
    try:
        ids = {name: map_id(m) for name, m in obj.maps.items()}
        for name, (kind, key, value, entries) in expected_maps.items():
            shown = bpftool("map", "show", "id", str(ids[name]))
            assert (shown["type"], shown["bytes_key"], shown["bytes_value"]) == (kind, key, value)
            assert shown["max_entries"] == entries and shown["name"] == name[:15]
            assert isinstance(obj.maps[name], bpfnb.Map)
        perf = bpftool("map", "show", "id", str(ids["dummy_perf"]))
        from bpfnb.maps import possible_cpus

        # gobpf: a perf event array declared with 0 entries gets one per possible CPU.
        assert perf["type"] == "perf_event_array"
        assert perf["max_entries"] == len(possible_cpus())
        for name, kind in expected_progs.items():
            prog = obj.programs[name]
            shown = bpftool("prog", "show", "id", str(prog.id))
            # bpftool shows the full name from BTF when the object has it.
            assert shown["type"] == kind and shown["name"] in (name, name[:15])
            assert prog.section == obj.spec.programs[name].section
        kprobe = bpftool("prog", "show", "id", str(obj.programs["kprobe__dummy"].id))
        assert {ids[n] for n in ("dummy_stack_trace", "dummy_hash", "dummy_array")} <= set(
            kprobe["map_ids"]
        )
    finally:
        obj.close()
    assert open_fds() == before
    # The kernel frees the maps once the programs holding them are gone (after an RCU grace
    # period, so not at once).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            bpf.map_get_fd_by_id(ids["dummy_hash"]).close()
        except OSError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the object's maps outlived it")


def test_btf_maps_load_with_their_types(clang_build):
    with load(clang_build("elf_btf_maps"), pin=False) as obj:
        counts = bpftool("map", "show", "id", str(map_id(obj.maps["counts"])))
        assert counts["btf_id"] > 0 and (counts["bytes_key"], counts["bytes_value"]) == (20, 16)
        pinned = bpftool("map", "show", "id", str(map_id(obj.maps["pinned"])))
        assert pinned["flags"] == 1  # BPF_F_NO_PREALLOC
        assert bpftool("map", "show", "id", str(map_id(obj.maps["events"])))["type"] == "ringbuf"
        outer = bpftool("map", "show", "id", str(map_id(obj.maps["outer"])))
        assert outer["type"] == "array_of_maps"
        prog = bpftool("prog", "show", "id", str(obj.programs["count_getppid"].id))
        assert prog["btf_id"] == counts["btf_id"]  # the object's BTF went to the kernel once


def test_map_in_map_slot_holds_the_declared_inner_map(clang_build):
    with load(clang_build("elf_btf_maps"), pin=False) as obj:
        for _ in range(3):
            prog_test_run(obj.programs["inner_lookup"].fd, PACKET)
        # The program found "inner" through outer[0] and counted in its slot 0.
        assert obj.maps["inner"][0] == 3


def test_tracepoint_counts_exactly_our_calls(clang_build):
    calls = 25
    with load(clang_build("elf_btf_maps"), pin=False) as obj:
        link = attach_tracepoint(obj.programs["count_getppid"].fd, "syscalls:sys_enter_getppid")
        try:
            for _ in range(calls):
                os.getppid()
        finally:
            link.close()
        frame = obj.maps["counts"].to_frame()
        ours = frame[frame["pid"] == os.getpid()]
        assert list(ours["count"]) == [calls]
        assert list(frame.columns) == ["pid", "comm", "count", "last_ns"]


def test_samples_maps_count_our_calls(clang_build):
    calls = 17
    with load(clang_build("elf_samples_maps", "-DSEVEN_FIELDS")) as obj:
        link = attach_tracepoint(obj.programs["on_getppid"].fd, "syscalls:sys_enter_getppid")
        try:
            for _ in range(calls):
                os.getppid()
        finally:
            link.close()
        assert obj.maps["calls"][os.getpid()] == calls


@pytest.mark.parametrize("verdict", [0, 1, 77])
def test_rodata_constant_sets_the_socket_filter_verdict(clang_build, verdict):
    with load(clang_build("elf_globals"), constants={"verdict": verdict}) as obj:
        result = prog_test_run(obj.programs["filter"].fd, PACKET)
        assert result.retval == verdict
        # The subprogram ran (it counts in "calls"), and .bss counted the run.
        assert obj.maps["calls"][0] == 1
        assert obj.maps[".bss"].to_frame()["hits"].tolist() == [1]
        assert obj.maps[".rodata"].to_frame()["verdict"].tolist() == [verdict]
        # .rodata is frozen: user space may not write it after load.
        with pytest.raises(OSError) as err:
            obj.maps[".rodata"][0] = obj.maps[".rodata"][0]
        assert err.value.errno == errno.EPERM


def test_constants_from_the_spec_and_the_call(clang_build):
    spec = read(clang_build("elf_globals"))
    spec.constants["verdict"] = 5
    with load(spec) as obj:
        assert prog_test_run(obj.programs["filter"].fd, PACKET).retval == 5
    with load(spec, constants={"verdict": 6}) as obj:
        assert prog_test_run(obj.programs["filter"].fd, PACKET).retval == 6
    assert spec.constants["verdict"] == 5  # load(constants=...) leaves the spec alone
    with pytest.raises(KeyError, match="no_such"):
        load(spec, constants={"no_such": 1})


@pytest.mark.parametrize("mine", [True, False])
def test_target_pid_constant_filters_the_tracepoint(clang_build, mine):
    calls = 12
    target = os.getpid() if mine else 0x7FFFFFFF  # above pid_max: no process has it
    with load_elf(clang_build("elf_globals"), {"target_pid": target}, attach=False) as obj:
        link = attach_tracepoint(obj.programs["on_getppid"].fd, "syscalls:sys_enter_getppid")
        try:
            for _ in range(calls):
                os.getppid()
        finally:
            link.close()
        assert obj.maps["calls"][0] == (calls if mine else 0)
        seen = obj.maps[".data"].to_frame()["seen_pid"].tolist()
        assert seen == [os.getpid() if mine else 7]


def test_bitfields_and_nested_types_read_back(clang_build):
    with load(clang_build("elf_bitfields")) as obj:
        assert prog_test_run(obj.programs["write_record"].fd, PACKET).retval == 0
        row = obj.maps["records"].to_frame().iloc[0]
    assert (row["flags.low"], row["flags.mid"], row["flags.high"]) == (5, 17, 123456)
    assert (row["point.x"], row["point.y"]) == (-3, 4)
    assert row["as_u64"] == 0x100000002 and row["name"] == "bpf"


def test_verifier_rejection_gives_log_and_c_line(clang_build):
    before = open_fds()
    with pytest.raises(VerifierError) as caught:
        load(clang_build("elf_reject"))
    err = caught.value
    assert isinstance(err, VerifierError) and err.program == "unchecked"
    assert "invalid mem access" in err.summary and "map_value_or_null" in err.log
    assert err.failing_instruction.startswith("7:")
    assert err.source.startswith("elf_reject.c:") and "return (int)*value;" in err.source
    # The summary line names the C line; the instruction and a hint follow it.
    first, *rest = err._render_traceback_()
    assert "(at elf_reject.c:" in first and any("instruction: 7:" in line for line in rest)
    assert open_fds() == before  # the map made before the failure was closed


def test_fentry_needs_trampolines(clang_build):
    path = clang_build("elf_fentry")
    btf_id = vmlinux_function_btf_id("do_sys_openat2")
    need(btf_id > 0, "this kernel has no BTF for do_sys_openat2")
    return_zero = bytes.fromhex("b7000000000000009500000000000000")
    try:
        bpf.prog_load(
            ProgType.TRACING,
            return_zero,
            "GPL",
            expected_attach_type=AttachType.TRACE_FENTRY,
            attach_btf_id=btf_id,
        ).close()
        refused = False
    except OSError as err:
        refused = err.errno == errno.EPERM
    if refused:
        with pytest.raises(KernelFeatureError, match="fentry"):
            load(path)
    else:
        with load(path) as obj:
            assert obj.programs["on_openat2"].type_name == "tracing"


@pytest.mark.kernels
def test_a_map_type_newer_than_the_kernel_is_named(clang_build):
    path = clang_build("elf_cgrp_storage")
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    if (major, minor) >= (6, 2):  # BPF_MAP_TYPE_CGRP_STORAGE came with Linux 6.2
        with load(path) as obj:
            assert obj.maps["per_cgroup"].fd > 0
        return
    with pytest.raises(KernelFeatureError) as err:
        load(path)
    assert str(err.value).startswith("map 'per_cgroup': this kernel has no BPF_MAP_TYPE_CGRP")


def test_load_elf_attaches_by_section_and_rolls_back_on_failure(clang_build, monkeypatch):
    import bpfnb.object

    path = clang_build("elf_samples_maps")
    with bpfnb.load_elf(path) as obj:
        assert obj.programs["on_getppid"].section.startswith("tracepoint/")
        assert obj.programs["on_getppid"].attach_points == ["tracepoint:syscalls:sys_enter_getppid"]
    before = open_fds()

    def refuse(*args):
        raise AttachError("refused here")

    monkeypatch.setattr(bpfnb.object, "attach_by_kind", refuse)
    with pytest.raises(AttachError, match="refused here"):
        bpfnb.load_elf(path)
    assert open_fds() == before


def test_pinning_by_name_and_gobpf_namespace(clang_build):
    need(os.path.ismount("/sys/fs/bpf"), "bpffs is not mounted at /sys/fs/bpf")
    root = f"/sys/fs/bpf/bpfnb-test-{uuid.uuid4().hex[:8]}"
    try:
        with load(clang_build("elf_btf_maps"), pin_root=root) as first:
            assert os.path.exists(f"{root}/pinned")
            first.maps["pinned"][7] = 70
            with load(clang_build("elf_btf_maps"), pin_root=root) as second:
                # The second load reuses the pinned map, values and all.
                assert map_id(second.maps["pinned"]) == map_id(first.maps["pinned"])
                assert second.maps["pinned"][7] == 70
                assert map_id(second.maps["counts"]) != map_id(first.maps["counts"])
        custom = {"dummy_pinned": "bpfnb_test/dummy_pinned"}  # gobpf's PIN_CUSTOM_NS
        with load(clang_build("elf_gobpf_dummy"), pin_root=root, pin_paths=custom):
            assert os.path.exists(f"{root}/bpfnb_test/dummy_pinned")
    finally:
        for dirpath, _dirs, files in sorted(os.walk(root), reverse=True):
            for name in files:
                os.unlink(os.path.join(dirpath, name))
            os.rmdir(dirpath)


def test_core_relocations_read_the_kernels_task_struct(clang_build):
    need(os.path.exists("/sys/kernel/btf/vmlinux"), "this kernel exposes no BTF")
    tids = []

    def worker() -> None:
        tids.append(threading.get_native_id())
        os.getppid()

    with load(clang_build("elf_core")) as obj:
        link = attach_tracepoint(obj.programs["read_task"].fd, "syscalls:sys_enter_getppid")
        try:
            thread = threading.Thread(target=worker)
            thread.start()
            thread.join()
        finally:
            link.close()
        row = obj.maps["results"][os.getpid()]
    # Locally pid is at offset 4 and tgid at 0; only relocated offsets read the right fields.
    assert (row.pid, row.tgid) == (tids[0], os.getpid()) and tids[0] != os.getpid()
    assert (row.tgid_exists, row.missing_exists, row.tgid_size) == (1, 0, 4)


def test_callback_runs_through_bpf_loop(clang_build):
    with load(clang_build("elf_callback")) as obj:
        assert prog_test_run(obj.programs["sum_to_ten"].fd, PACKET).retval == sum(range(10))


def test_kconfig_externs_hold_the_running_kernels_values(clang_build):
    from bpfnb.elf.kconfig import kernel_config, version_code

    config = kernel_config()
    with load(clang_build("elf_kconfig")) as obj:
        prog_test_run(obj.programs["read_config"].fd, PACKET)
        seen = obj.maps[".bss"].to_frame()["seen"][0].tolist()
    expected_jit = ord(config.get("CONFIG_BPF_JIT", "n"))
    assert seen == [
        version_code(os.uname().release),
        int(config["CONFIG_HZ"]),
        int(config["CONFIG_BPF_SYSCALL"] == "y"),
        expected_jit,
        0,  # CONFIG_BPFNB_NO_SUCH_OPTION is __weak and absent
    ]


def test_old_objects_with_machine_zero_load_as_libbpf_loads_them(clang_build, tmp_path):
    from tests.kernel.loadall import bpftool_loadall, tags

    old = tmp_path / "machine_zero.o"
    data = bytearray(clang_build("elf_hidden").read_bytes())
    data[18:20] = bytes(2)  # EM_NONE, as LLVM before 3.9 wrote BPF objects
    old.write_bytes(data)
    with pytest.warns(UserWarning, match="e_machine is 0"), load(old) as obj:
        assert prog_test_run(obj.programs["call_hidden"].fd, PACKET).retval == 40
        assert tags(obj) == bpftool_loadall(old)
