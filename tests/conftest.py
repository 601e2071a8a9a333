"""Shared test setup: kernel tests skip with a reason, or fail under BPFNB_REQUIRE_KERNEL=1."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

REQUIRE_KERNEL = os.environ.get("BPFNB_REQUIRE_KERNEL") == "1"
FIXTURES = Path(__file__).parent / "fixtures"
# A directory that clang_build shares between test runs: `make test-kernels` builds the objects
# on the host into a fresh one, and the run inside the emulated kernel only reads them
# (PREBUILT_ONLY), since clang under emulation is slow. Objects are named after their command
# line, not their sources: the directory is meant for one lane run.
OBJECTS_DIR = os.environ.get("BPFNB_TEST_OBJECTS", "")
PREBUILT_ONLY = os.environ.get("BPFNB_TEST_OBJECTS_PREBUILT") == "1"
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
    """Build ``tests/fixtures/NAME.c`` with ``clang -target bpf`` and return the object's path.

    With ``BPFNB_TEST_OBJECTS`` set, objects are named after their source and flags and kept in
    that directory; with ``BPFNB_TEST_OBJECTS_PREBUILT=1`` too, they must already be there.
    """
    out_dir = Path(OBJECTS_DIR) if OBJECTS_DIR else tmp_path_factory.mktemp("bpf-objects")

    def build(name: str, *cflags: str) -> Path:
        source = FIXTURES / f"{name}.c"
        cmd = ["clang", "-O2", "-g", "-target", "bpf", "-c", str(source)]
        cmd += ["-I", str(FIXTURES), f"-D__TARGET_ARCH_{TARGET_ARCH}", *cflags]
        if MULTIARCH_INCLUDE.is_dir():
            cmd += ["-idirafter", str(MULTIARCH_INCLUDE)]
        digest = hashlib.sha256("\0".join(cmd).encode()).hexdigest()[:12]
        obj = out_dir / f"{name}-{digest}.o"
        if obj.exists():
            return obj
        if PREBUILT_ONLY:
            pytest.fail(f"{obj.name} was not built before this run ({' '.join(cmd)})")
        need(shutil.which("clang") is not None, "clang is not installed")
        tmp = obj.with_suffix(f".{os.getpid()}.tmp")
        done = subprocess.run([*cmd, "-o", str(tmp)], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
        tmp.replace(obj)
        return obj

    return build
