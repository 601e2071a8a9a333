"""Externs the kernel resolves: kfuncs and __ksym variables, the LINUX_* values libbpf computes,
and hidden subprograms, each compared with what libbpf (bpftool prog loadall) loads."""

from __future__ import annotations

import ctypes as ct
import dataclasses
import errno
import os
import re
import struct

import pytest

from bpfnb.elf import load, read
from bpfnb.elf.kconfig import running_version
from bpfnb.errors import KernelFeatureError, VerifierError
from bpfnb.sys import bpf, features
from bpfnb.sys.constants import ProgType
from bpfnb.sys.testrun import prog_test_run
from tests.conftest import need
from tests.kernel.loadall import bpftool_json, bpftool_loadall, tags

PACKET = bytes(14) + bytes([0x45]) + bytes(49)


def run(obj, name: str) -> int:
    return prog_test_run(obj.programs[name].fd, PACKET).retval


def kallsyms_text() -> str:
    with open("/proc/kallsyms") as f:
        return f.read()


@pytest.fixture(autouse=True)
def vmlinux_btf() -> None:
    need(os.path.exists("/sys/kernel/btf/vmlinux"), "this kernel exposes no BTF")


def test_kfuncs_run_and_load_as_libbpf_loads_them(clang_build):
    path = clang_build("elf_kfunc")
    with load(path) as obj:
        assert run(obj, "sum_to_ten") == sum(range(10))  # the iterator kfuncs really ran
        assert obj.btf_error == ""  # the kernel took the fixed-up BTF (no extern linkage)
        # The same instructions as libbpf's: the kfunc calls carry the same kernel BTF ids.
        assert tags(obj) == bpftool_loadall(path)


def test_a_kfunc_whose_prototype_differs_from_the_kernels_is_refused(clang_build):
    spec = read(clang_build("elf_kfunc"))
    new, destroy = spec.externs["bpf_iter_num_new"], spec.externs["bpf_iter_num_destroy"]
    # bpf_iter_num_new as if declared with bpf_iter_num_destroy's one parameter.
    spec.externs["bpf_iter_num_new"] = dataclasses.replace(new, type_id=destroy.type_id)
    with pytest.raises(KernelFeatureError, match="bpf_iter_num_new.*does not match the kernel"):
        load(spec)


def test_weak_externs_that_the_kernel_lacks_are_zero(clang_build):
    path = clang_build("elf_ksym_weak")
    with load(path) as obj:
        # Only bpf_iter_num_destroy exists; the absent kfunc's guarded call was dead code.
        assert run(obj, "which_exist") == 1
        assert tags(obj) == bpftool_loadall(path)


def test_a_strong_extern_the_kernel_lacks_is_a_clear_error(clang_build):
    spec = read(clang_build("elf_ksym_weak"))
    kfunc = spec.externs["bpfnb_no_such_kfunc"]
    spec.externs["bpfnb_no_such_kfunc"] = dataclasses.replace(kfunc, weak=False)
    with pytest.raises(KernelFeatureError, match="has no function 'bpfnb_no_such_kfunc'"):
        load(spec)
    symbol = spec.externs["bpfnb_no_such_symbol"]
    spec.externs["bpfnb_no_such_kfunc"] = kfunc
    spec.externs["bpfnb_no_such_symbol"] = dataclasses.replace(symbol, weak=False)
    with pytest.raises(KernelFeatureError, match="bpfnb_no_such_symbol: is not in /proc/kallsyms"):
        load(spec)


def test_a_typeless_ksym_is_its_kallsyms_address(clang_build):
    path = clang_build("elf_ksym")
    with load(path, programs=["address_of_vfs_read"]) as obj:
        assert list(obj.programs) == ["address_of_vfs_read"]
        run(obj, "address_of_vfs_read")
        address = int(obj.maps[".bss"].to_frame()["vfs_read_address"][0])
    found = re.search(r"^([0-9a-f]+) [Tt] vfs_read$", kallsyms_text(), re.M)
    assert found is not None and address == int(found.group(1), 16) != 0


def test_a_typed_ksym_reads_each_cpus_runqueue_where_the_kernel_can(clang_build):
    path = clang_build("elf_ksym")
    nr_cpus = min(os.cpu_count() or 1, 64)
    if re.search(r" runqueues$", kallsyms_text(), re.M) is None:
        # The kernel's BTF has the variable, but its kallsyms lists no variables: the kernel
        # cannot load the program, for libbpf either. bpfnb says why.
        with pytest.raises(KernelFeatureError, match="runqueues.*CONFIG_KALLSYMS_ALL"):
            load(path, programs=["read_runqueues"])
        assert bpftool_loadall(path) is None
        return
    with load(path, {"nr_cpus": nr_cpus}, programs=["read_runqueues"]) as obj:
        run(obj, "read_runqueues")
        seen = obj.maps[".bss"].to_frame()["cpu_of_rq"][0].tolist()
    assert seen[:nr_cpus] == list(range(nr_cpus))


def test_hidden_subprograms_are_static_in_the_kernels_btf(clang_build):
    path = clang_build("elf_hidden")
    with load(path) as obj:
        assert run(obj, "call_hidden") == 40
        assert tags(obj) == bpftool_loadall(path)
    spec = read(path)
    assert spec.hidden_functions == ["tenfold"]
    spec.hidden_functions = []  # as a global function, the verifier checks it on its own
    with pytest.raises(VerifierError, match="mem_or_null"):
        load(spec)


def test_objects_built_with_libbpfs_usdt_and_ksyscall_headers_load(clang_build):
    path = clang_build("elf_libbpf_tracing")
    with load(path) as obj:
        assert {n: p.attach_kind for n, p in obj.programs.items()} == {
            "on_probe": "usdt",
            "on_getppid": "ksyscall",
        }
        assert tags(obj) == bpftool_loadall(path)


def _cookie_probe() -> int:
    # bpf_get_attach_cookie() (helper 174) in a tracepoint program, as libbpf probes it.
    code = struct.pack("<BBhi", 0x85, 0, 0, 174) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    try:
        bpf.prog_load(ProgType.TRACEPOINT, code, "GPL").close()
    except VerifierError:
        return 0
    except OSError as err:
        return 0 if err.errno == errno.EINVAL else -1
    return 1


def _map_value(fd: int, size: int) -> bytes:
    buf = ct.create_string_buffer(size)
    assert bpf.map_lookup(fd, ct.c_uint32(0), buf)
    return buf.raw


def test_linux_values_are_the_kernels_and_laid_out_as_libbpf_does(clang_build):
    path = clang_build("elf_linux_has")
    prefix = features.syscall_wrapper_prefix()
    wrapper = prefix is not None and f" {prefix}bpf\n" in kallsyms_text()
    with load(path) as obj:
        run(obj, "read_linux")
        seen = obj.maps[".bss"].to_frame()["seen"][0].tolist()
        kconfig = obj.spec.maps[".kconfig"]
        ours = _map_value(obj.maps[".kconfig"].fd, kconfig.value_size)
    assert seen == [running_version(), _cookie_probe(), int(wrapper), 0]

    theirs: list[bytes] = []

    def dump_kconfig(pinned) -> None:
        prog = bpftool_json("prog", "show", "pinned", str(pinned / "read_linux"))
        for map_id in prog["map_ids"]:  # type: ignore[index]
            if bpftool_json("map", "show", "id", str(map_id))["name"].endswith(".kconfig"):  # type: ignore[index]
                entry = bpftool_json("map", "dump", "id", str(map_id))[0]  # type: ignore[index]
                theirs.append(bytes(int(b, 16) for b in entry["value"]))

    assert bpftool_loadall(path, dump_kconfig) is not None and len(theirs) == 1
    # The same layout and values as libbpf's, but where libbpf cannot probe: it learns of
    # syscall wrappers by opening a kprobe, and says 0 on a kernel without kprobes.
    for var in kconfig.variables:
        mine, libbpf = (v[var.offset : var.offset + var.size] for v in (ours, theirs[0]))
        if var.name == "LINUX_HAS_SYSCALL_WRAPPER" and features.kprobes_missing_reason():
            assert libbpf == b"\0" and mine == bytes([wrapper])
        else:
            assert mine == libbpf, var.name
