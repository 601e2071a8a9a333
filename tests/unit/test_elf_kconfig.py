"""``__kconfig`` externs: laid out in a ``.kconfig`` map and filled from a kernel config."""

from __future__ import annotations

import struct

import pytest

from bpfnb.elf import read
from bpfnb.elf.kconfig import kconfig_data, linux_value, syscall_wrapper
from bpfnb.errors import KernelFeatureError
from bpfnb.sys import features, kallsyms

CONFIG = {"CONFIG_HZ": "300", "CONFIG_BPF_SYSCALL": "y", "CONFIG_BPF_JIT": "m"}


@pytest.fixture(scope="module")
def spec(clang_build):
    return read(clang_build("elf_kconfig"))


def test_externs_get_a_read_only_map(spec):
    kconfig = spec.maps[".kconfig"]
    assert kconfig.readonly and kconfig.layout == "data"
    offsets = {v.name: (v.offset, v.size) for v in kconfig.variables}
    # libbpf's layout: by alignment (largest first), then size, then name.
    assert offsets == {
        "CONFIG_HZ": (0, 4),
        "LINUX_KERNEL_VERSION": (4, 4),
        "CONFIG_BPFNB_NO_SUCH_OPTION": (8, 1),
        "CONFIG_BPF_JIT": (9, 1),
        "CONFIG_BPF_SYSCALL": (10, 1),
    }
    assert spec.kconfig_weak["CONFIG_BPFNB_NO_SUCH_OPTION"]
    assert not spec.kconfig_weak["CONFIG_HZ"]
    assert "CONFIG_HZ" not in spec.constants  # the kernel decides, not the user
    refs = {r.map for r in spec.programs["read_config"].references}
    assert refs == {".kconfig", ".bss"}


def test_values_from_a_config(spec):
    kconfig = spec.maps[".kconfig"]
    data = kconfig_data(
        kconfig.variables, spec.kconfig_weak, spec.btf, kconfig.value_size, CONFIG, "5.10.3-x"
    )
    hz, version, missing, jit, syscall = struct.unpack_from("<iIBcB", data)
    assert (version, hz, syscall, jit, missing) == (0x050A03, 300, 1, b"m", 0)


def test_missing_or_unfit_values_are_kernel_feature_errors(spec):
    kconfig = spec.maps[".kconfig"]
    args = (kconfig.variables, spec.kconfig_weak, spec.btf, kconfig.value_size)
    with pytest.raises(KernelFeatureError, match="CONFIG_HZ"):
        kconfig_data(*args, {"CONFIG_BPF_SYSCALL": "y", "CONFIG_BPF_JIT": "y"}, "6.1.0")
    with pytest.raises(KernelFeatureError, match="module"):
        kconfig_data(*args, {**CONFIG, "CONFIG_BPF_SYSCALL": "m"}, "6.1.0")


def _linux_spec(clang_build):
    return read(clang_build("elf_linux_has"))


def test_linux_values_come_from_the_kernel_not_its_config(clang_build):
    spec = _linux_spec(clang_build)
    kconfig = spec.maps[".kconfig"]
    linux = {"LINUX_HAS_BPF_COOKIE": 1, "LINUX_HAS_SYSCALL_WRAPPER": 0}
    data = kconfig_data(
        kconfig.variables, spec.kconfig_weak, spec.btf, kconfig.value_size, {}, "5.15.7", linux
    )
    values = {v.name: data[v.offset : v.offset + v.size] for v in kconfig.variables}
    assert values == {
        "LINUX_KERNEL_VERSION": struct.pack("<I", 0x05_0F_07),
        "LINUX_HAS_BPF_COOKIE": b"\x01",
        "LINUX_HAS_SYSCALL_WRAPPER": b"\x00",
        "LINUX_HAS_BPFNB_NOTHING": b"\x00",  # unknown to libbpf, but __weak: 0
    }


def test_an_unknown_strong_linux_extern_is_refused():
    with pytest.raises(KernelFeatureError, match="LINUX_HAS_NOTHING.*__weak"):
        linux_value("LINUX_HAS_NOTHING", weak=False)
    assert linux_value("LINUX_HAS_NOTHING", weak=True) == 0


def test_syscall_wrappers_are_found_by_name(monkeypatch):
    monkeypatch.setattr(features, "syscall_wrapper_prefix", lambda: "__x64_sys_")
    monkeypatch.setattr(kallsyms, "lookup", lambda names: {"__x64_sys_bpf": [(1, "T")]})
    assert syscall_wrapper()
    monkeypatch.setattr(kallsyms, "lookup", lambda names: {})
    assert not syscall_wrapper()
    monkeypatch.setattr(features, "syscall_wrapper_prefix", lambda: None)
    assert not syscall_wrapper()


@pytest.mark.parametrize(
    "machine, prefix",
    [("x86_64", "__x64_sys_"), ("aarch64", "__arm64_sys_"), ("s390x", "__s390x_sys_"),
     ("sparc64", None)],
)  # fmt: skip
def test_syscall_wrapper_prefixes_are_libbpfs(machine, prefix):
    assert features.syscall_wrapper_prefix(machine) == prefix
