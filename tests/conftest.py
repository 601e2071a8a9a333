"""Shared test setup: kernel tests skip with a reason, or fail under BPFNB_REQUIRE_KERNEL=1."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REQUIRE_KERNEL = os.environ.get("BPFNB_REQUIRE_KERNEL") == "1"
FIXTURES = Path(__file__).parent / "fixtures"


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
            cmd += ["-I", str(FIXTURES), *cflags]
            subprocess.run(cmd, check=True, capture_output=True, text=True)
            built[key] = obj
        return built[key]

    return build
