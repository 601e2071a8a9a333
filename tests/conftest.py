"""Shared test setup: kernel tests skip with a reason, or fail under BPFNB_REQUIRE_KERNEL=1."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

REQUIRE_KERNEL = os.environ.get("BPFNB_REQUIRE_KERNEL") == "1"
FIXTURES = Path(__file__).parent / "fixtures"
# Fixtures may include libbpf's headers (libbpf-dev); <linux/bpf.h> needs <asm/types.h>, which
# Debian keeps in the multiarch directory.
MULTIARCH_INCLUDE = Path("/usr/include") / f"{platform.machine()}-linux-gnu"
# bpf_tracing.h reads pt_regs as the target architecture lays them out.
TARGET_ARCH = {"x86_64": "x86", "aarch64": "arm64", "s390x": "s390", "ppc64le": "powerpc",
               "riscv64": "riscv"}.get(platform.machine(), platform.machine())  # fmt: skip


def need(condition: bool, reason: str) -> None:
    """Skip the test for ``reason`` unless ``condition``; under BPFNB_REQUIRE_KERNEL=1, fail."""
    if condition:
        return
    if REQUIRE_KERNEL:
        pytest.fail(f"BPFNB_REQUIRE_KERNEL=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def clang_build(tmp_path_factory: pytest.TempPathFactory):
    """Build ``tests/fixtures/NAME.c`` with ``clang -target bpf`` and return the object's path."""
    need(shutil.which("clang") is not None, "clang is not installed")
    out_dir = tmp_path_factory.mktemp("bpf-objects")
    built: dict[str, Path] = {}

    def build(name: str, *cflags: str) -> Path:
        key = name + " ".join(cflags)
        if key not in built:
            source = FIXTURES / f"{name}.c"
            obj = out_dir / f"{name}{len(built)}.o"
            cmd = ["clang", "-O2", "-g", "-target", "bpf", "-c", str(source), "-o", str(obj)]
            cmd += ["-I", str(FIXTURES), f"-D__TARGET_ARCH_{TARGET_ARCH}", *cflags]
            if MULTIARCH_INCLUDE.is_dir():
                cmd += ["-idirafter", str(MULTIARCH_INCLUDE)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
            built[key] = obj
        return built[key]

    return build
