"""``%%bpf`` driven through a real IPython shell, with workloads each test controls."""

from __future__ import annotations

import ctypes
import gc
import json
import os
import socket
import subprocess
import sys
import weakref

import pytest
from IPython.core.interactiveshell import InteractiveShell

from bpfnb.errors import CompileError, KernelFeatureError, VerifierError

GETPPID_COUNTER = """
BPF_ARRAY(calls, u64, 1);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if (bpf_get_current_pid_tgid() >> 32 != PID)
        return 0;
    calls.increment(0);
    return 0;
}
"""


@pytest.fixture
def shell(bcc_ok: None):
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "bpfnb")
    ip.run_cell("import os")
    yield ip
    ip.run_line_magic("bpf_close", "--all")


def _count(obj) -> int:
    # Read through bcc's own table, so these tests do not depend on the Map layer.
    return int(obj.loader.bpf[b"calls"][0].value)


def test_exact_getppid_count_filtered_by_define(shell) -> None:
    obj = shell.run_cell_magic("bpf", "counter -D PID={os.getpid()}", GETPPID_COUNTER)
    assert shell.user_ns["counter"] is obj
    for _ in range(250):
        os.getppid()
    assert _count(obj) == 250
    assert "tracepoint:syscalls:sys_enter_getppid" in repr(obj)
    assert "sys_enter_getppid" in obj._repr_html_()


def test_cell_body_is_not_variable_expanded(shell) -> None:
    # `{PID}` in the body must reach the C compiler untouched (as a block), not be expanded.
    body = GETPPID_COUNTER.replace("calls.increment(0);", "{ calls.increment(0); }")
    obj = shell.run_cell_magic("bpf", "braces -D PID={os.getpid()}", body)
    os.getppid()
    assert _count(obj) == 1


def test_compile_error_points_at_cell_line(shell) -> None:
    body = "int f(void *ctx) {\n    u32 x = 1;\n    return undefined_name + x;\n}\n"
    with pytest.raises(CompileError) as info:
        shell.run_cell_magic("bpf", "broken", body)
    [diagnostic] = [d for d in info.value.diagnostics if d.severity == "error"]
    assert (diagnostic.line, diagnostic.column) == (3, 12)
    assert "undefined_name" in diagnostic.message
    assert diagnostic.source_line == "    return undefined_name + x;"
    assert "broken" not in shell.user_ns


def test_verifier_rejection_is_typed_and_leaves_nothing(shell) -> None:
    body = """
BPF_HASH(h, u32, u64);
int tracepoint__syscalls__sys_enter_getppid(void *ctx) {
    u32 key = 0;
    u64 *value = h.lookup(&key);
    return *value;
}
"""
    with pytest.raises(VerifierError) as info:
        shell.run_cell_magic("bpf", "rejected", body)
    assert "map_value_or_null" in info.value.summary
    assert "processed" in info.value.log
    assert "rejected" not in shell.user_ns


def test_kprobe_gives_kernel_feature_error_here(shell) -> None:
    if os.path.exists("/sys/bus/event_source/devices/kprobe"):
        pytest.skip("this kernel has kprobes")
    with pytest.raises(KernelFeatureError, match="CONFIG_KPROBES"):
        shell.run_cell_magic("bpf", "kp", "int kprobe__do_sys_openat2(void *ctx) { return 0; }")


def test_uprobe_on_libc_getpid_counts_exactly(shell) -> None:
    # Filter on the calling thread: other threads of a process may call getpid() too.
    body = """
BPF_ARRAY(calls, u64, 1);
int count_getpid(struct pt_regs *ctx) {
    if ((u32)bpf_get_current_pid_tgid() != TID)
        return 0;
    calls.increment(0);
    return 0;
}
"""
    shell.run_cell("import threading")
    obj = shell.run_cell_magic("bpf", "up -D TID={threading.get_native_id()}", body)
    obj.attach_uprobe("count_getpid", "c", "getpid")
    libc = ctypes.CDLL("libc.so.6")
    for _ in range(123):
        libc.getpid()
    assert _count(obj) == 123
    # The attach point names the library the linker would load for "c".
    (point,) = obj.programs["count_getpid"].attach_points
    assert point.startswith("uprobe:/") and point.endswith("/libc.so.6:getpid")


def test_socket_filter_counts_packets_sent_to_lo(shell) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    body = """
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/in.h>
BPF_ARRAY(calls, u64, 1);
int count_udp(struct __sk_buff *skb) {
    if (load_half(skb, offsetof(struct ethhdr, h_proto)) != ETH_P_IP)
        return 0;
    if (load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol)) != IPPROTO_UDP)
        return 0;
    u32 ihl = (load_byte(skb, ETH_HLEN) & 0x0f) * 4;
    if (load_half(skb, ETH_HLEN + ihl + 2) == PORT)
        calls.increment(0);
    return 0;
}
"""
    obj = shell.run_cell_magic("bpf", f"sock -D PORT={port}", body)
    obj.attach_socket_filter("count_udp", "lo")
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sender, receiver:
        for _ in range(40):
            sender.sendto(b"x", ("127.0.0.1", port))
            receiver.recv(16)
    # A packet socket on lo sees each looped-back packet twice: outgoing and incoming.
    assert _count(obj) == 80


def test_rerun_replaces_and_closes_previous(shell) -> None:
    first = shell.run_cell_magic("bpf", "again -D PID={os.getpid()}", GETPPID_COUNTER)
    second = shell.run_cell_magic("bpf", "again -D PID={os.getpid()}", GETPPID_COUNTER)
    assert first.closed and not second.closed
    assert shell.user_ns["again"] is second
    shell.run_line_magic("bpf_close", "again")
    assert second.closed


def test_a_failed_rerun_keeps_the_working_object(shell) -> None:
    first = shell.run_cell_magic("bpf", "kept -D PID={os.getpid()}", GETPPID_COUNTER)
    for _ in range(30):
        os.getppid()
    typo = GETPPID_COUNTER.replace("calls.increment(0)", "calls.increment(slot)")
    with pytest.raises(CompileError) as err:
        shell.run_cell_magic("bpf", "kept -D PID={os.getpid()}", typo)
    rendered = "\n".join(err.value._render_traceback_())
    assert "kept still holds the previous version" in rendered
    assert shell.user_ns["kept"] is first and not first.closed
    for _ in range(12):
        os.getppid()
    assert _count(first) == 42  # it kept counting, and kept its counts
    assert "kept: tracepoint:syscalls:sys_enter_getppid" in repr(
        shell.run_line_magic("bpf_list", "")
    )


def test_no_attach_and_duration(shell) -> None:
    obj = shell.run_cell_magic("bpf", "idle --no-attach -D PID={os.getpid()}", GETPPID_COUNTER)
    os.getppid()
    assert _count(obj) == 0
    timed = shell.run_cell_magic(
        "bpf", "timed --duration 0.3 -D PID={os.getpid()}", GETPPID_COUNTER
    )
    os.getppid()  # after --duration the program is detached, and its map is still readable
    assert _count(timed) == 0
    assert timed.programs and not timed.programs[next(iter(timed.programs))].attach_points


def _bpftool_program_ids() -> set[int]:
    out = subprocess.run(
        ["bpftool", "prog", "list", "--json"], capture_output=True, text=True, check=True
    )
    return {prog["id"] for prog in json.loads(out.stdout)}


def _program_ids(obj) -> set[int]:
    return {program.id for program in obj.programs.values()}


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_two_hundred_reruns_leak_nothing(shell) -> None:
    # Ids, not names: other processes may load programs with the same name meanwhile.
    shell.run_cell_magic("bpf", "loop -D PID={os.getpid()}", GETPPID_COUNTER)
    gc.collect()
    fds_after_first = _open_fds()
    loaded = _program_ids(shell.user_ns["loop"])
    replaced = []
    for _ in range(199):
        replaced.append(weakref.ref(shell.user_ns["loop"].loader.bpf))
        shell.run_cell_magic("bpf", "loop -D PID={os.getpid()}", GETPPID_COUNTER)
        loaded |= _program_ids(shell.user_ns["loop"])
    gc.collect()
    assert len(loaded) == 200
    assert loaded & _bpftool_program_ids() == _program_ids(shell.user_ns["loop"])
    assert _open_fds() == fds_after_first
    assert all(ref() is None for ref in replaced), "bcc objects are still held (atexit?)"
    for _ in range(5):
        os.getppid()
    assert _count(shell.user_ns["loop"]) == 5


def test_compile_error_after_tracepoint_probe_keeps_cell_line(shell) -> None:
    # bcc inserts the tracepoint's args struct into the text it compiles; the line reported
    # must still be the cell's.
    body = (
        "BPF_ARRAY(calls, u64, 1);\n"
        "\n"
        "TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n"
        "    calls.increment(slot);\n"
        "    return 0;\n"
        "}\n"
    )
    with pytest.raises(CompileError) as info:
        shell.run_cell_magic("bpf", "shifted", body)
    [diagnostic] = [d for d in info.value.diagnostics if d.severity == "error"]
    assert diagnostic.line == 4
    assert diagnostic.source_line == "    calls.increment(slot);"


def test_trace_printk_output_appears_in_the_cell(shell, capsys) -> None:
    import threading

    body = """
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if (bpf_get_current_pid_tgid() >> 32 == PID)
        bpf_trace_printk("hello from bpfnb %d\\n", 42);
    return 0;
}
"""
    stop = threading.Event()

    def workload() -> None:
        while not stop.is_set():
            os.getppid()
            stop.wait(0.05)

    worker = threading.Thread(target=workload)
    worker.start()
    try:
        shell.run_cell_magic("bpf", "printer --duration 0.6 -D PID={os.getpid()}", body)
    finally:
        stop.set()
        worker.join()
    assert "hello from bpfnb 42" in capsys.readouterr().out


def test_help_and_unload(shell, capsys) -> None:
    shell.run_line_magic("bpf", "--help")
    assert "--duration" in capsys.readouterr().out
    shell.run_line_magic("unload_ext", "bpfnb")
    assert "bpf" not in shell.magics_manager.magics["cell"]
    assert "bpf_list" not in shell.magics_manager.magics["line"]
    shell.run_line_magic("load_ext", "bpfnb")
    assert "bpf" in shell.magics_manager.magics["cell"]


def test_shell_exit_closes_live_objects(bcc_ok: None, tmp_path) -> None:
    marker = tmp_path / "closed"
    script = f"""
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "bpfnb")
obj = shell.run_cell_magic("bpf", "live", {GETPPID_COUNTER.replace("PID", "1")!r})
obj.on_close(lambda: open({str(marker)!r}, "w").write(str(len(obj.links))))
"""
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    assert marker.read_text() == "1"  # closed at exit, with its one tracepoint link


ELF_COUNTER = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 target_pid = 0;

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} calls SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
    __u32 zero = 0;
    __u64 *count;

    if (bpf_get_current_pid_tgid() >> 32 != target_pid)
        return 0;
    count = bpf_map_lookup_elem(&calls, &zero);
    if (count)
        __sync_fetch_and_add(count, 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_elf_cell_counts_with_a_constant_set_from_python(shell) -> None:
    obj = shell.run_cell_magic(
        "bpf", "--elf elfcount --constant target_pid={os.getpid()}", ELF_COUNTER
    )
    for _ in range(77):
        os.getppid()
    assert int(obj.maps["calls"][0]) == 77
    assert obj.programs["count_getppid"].attach_points
    rerun = shell.run_cell_magic("bpf", "--elf elfcount --constant target_pid=1", ELF_COUNTER)
    assert obj.closed and shell.user_ns["elfcount"] is rerun


def test_elf_cell_compile_error_has_cell_line(shell) -> None:
    with pytest.raises(CompileError) as info:
        shell.run_cell_magic("bpf", "--elf badelf", "int f(void *ctx)\n{\n    return nope;\n}\n")
    [diagnostic] = [d for d in info.value.diagnostics if d.severity == "error"]
    assert diagnostic.line == 3


def test_bpf_show_picks_the_view_and_replaces_it_on_rerun(shell, tmp_path) -> None:
    body = """
BPF_HISTOGRAM(sizes);
TRACEPOINT_PROBE(syscalls, sys_enter_read) {
    if (bpf_get_current_pid_tgid() >> 32 != PID)
        return 0;
    sizes.increment(bpf_log2l(args->count));
    return 0;
}
"""
    shell.run_cell_magic("bpf", "reads -D PID={os.getpid()}", body)
    view = shell.run_line_magic("bpf_show", "reads.sizes --interval 0.5")
    assert type(view).__name__ == "LiveHistogram"
    path = tmp_path / "data"
    path.write_bytes(b"x" * 100)
    fd = os.open(path, os.O_RDONLY)
    try:
        for _ in range(9):
            os.pread(fd, 100, 0)  # pread64 is not read(): only the next reads count
        for _ in range(3):
            os.lseek(fd, 0, 0)
            os.read(fd, 100)  # count 100 -> bucket [64, 127]
    finally:
        os.close(fd)
    view.refresh()
    row = view.data[view.data["low"] == 64]
    assert int(row["count"].iloc[0]) == 3
    again = shell.run_line_magic("bpf_show", "reads.sizes")
    assert again is not view and not getattr(view, "running", False)


def test_per_cpu_map_with_4_byte_values_loads(shell) -> None:
    # bcc's own table class refuses this map ("Leaf must be aligned to 8 bytes").
    obj = shell.run_cell_magic(
        "bpf", "small", "struct v { u32 a; };\nBPF_PERCPU_ARRAY(p, struct v, 4);"
    )
    obj.maps["p"][1] = {"a": 7}
    frame = obj.maps["p"].to_frame()
    assert int(frame.loc[frame["key"] == 1, "a"].iloc[0]) == 7 * len(
        frame.filter(like="a.cpu").columns
    )


def test_llvm_fatal_error_is_a_compile_error_not_an_exit(shell) -> None:
    # clang 14's BPF backend calls report_fatal_error (and so exit) on this; the kernel
    # process must survive it, twice, and keep compiling.
    body = """
BPF_ARRAY(counts, u32, 1);
int f(void *ctx) {
    int zero = 0;
    u32 *count = counts.lookup(&zero);
    if (!count)
        return 0;
    return __sync_fetch_and_add(count, 1);
}
"""
    for _ in range(2):
        with pytest.raises(CompileError, match="LLVM"):
            shell.run_cell_magic("bpf", "fatal", body)
    obj = shell.run_cell_magic("bpf", "after -D PID={os.getpid()}", GETPPID_COUNTER)
    os.getppid()
    assert _count(obj) == 1


def test_closing_an_object_closes_its_maps(shell) -> None:
    obj = shell.run_cell_magic("bpf", "owned -D PID={os.getpid()}", GETPPID_COUNTER)
    calls = obj.maps["calls"]
    shell.run_line_magic("bpf_close", "owned")
    assert calls.closed
