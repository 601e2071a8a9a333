"""``__kconfig`` externs: laid out in a ``.kconfig`` map and filled from a kernel config."""

from __future__ import annotations

import struct

import pytest

from bpfnb.elf import read
from bpfnb.elf.kconfig import kconfig_data
from bpfnb.errors import KernelFeatureError

CONFIG = {"CONFIG_HZ": "300", "CONFIG_BPF_SYSCALL": "y", "CONFIG_BPF_JIT": "m"}


@pytest.fixture(scope="module")
def spec(clang_build):
    return read(clang_build("elf_kconfig"))


def test_externs_get_a_read_only_map(spec):
    kconfig = spec.maps[".kconfig"]
    assert kconfig.readonly and kconfig.layout == "data"
    offsets = {v.name: (v.offset, v.size) for v in kconfig.variables}
    assert offsets == {
        "LINUX_KERNEL_VERSION": (0, 4),
        "CONFIG_HZ": (4, 4),
        "CONFIG_BPF_SYSCALL": (8, 1),
        "CONFIG_BPF_JIT": (9, 1),
        "CONFIG_BPFNB_NO_SUCH_OPTION": (10, 1),
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
    version, hz, syscall, jit, missing = struct.unpack_from("<IiBcB", data)
    assert (version, hz, syscall, jit, missing) == (0x050A03, 300, 1, b"m", 0)


def test_missing_or_unfit_values_are_kernel_feature_errors(spec):
    kconfig = spec.maps[".kconfig"]
    args = (kconfig.variables, spec.kconfig_weak, spec.btf, kconfig.value_size)
    with pytest.raises(KernelFeatureError, match="CONFIG_HZ"):
        kconfig_data(*args, {"CONFIG_BPF_SYSCALL": "y", "CONFIG_BPF_JIT": "y"}, "6.1.0")
    with pytest.raises(KernelFeatureError, match="module"):
        kconfig_data(*args, {**CONFIG, "CONFIG_BPF_SYSCALL": "m"}, "6.1.0")
