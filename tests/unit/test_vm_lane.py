"""The test-kernels lane's own logic: apt records, kernel features, reports, missing pieces."""

from __future__ import annotations

import platform
import shlex
from pathlib import Path

import pytest

from tests.vm import lane

META = """Package: linux-image-amd64
Source: linux-signed-amd64 (6.1.192+3)
Version: 6.1.192-3
Depends: linux-image-6.1.0-57-amd64 (= 6.1.192-3)
Description: Linux for 64-bit PCs (meta-package)
 This package depends on the latest Linux kernel
 and modules for use on PCs.

Package: linux-image-amd64
Version: 6.1.176-1
Depends: linux-image-6.1.0-40-amd64 (= 6.1.176-1)
"""
IMAGE = """Package: linux-image-6.1.0-57-amd64
Version: 6.1.192-3
Depends: kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool
"""


def test_first_record_and_its_fields() -> None:
    fields = lane.parse_fields(META)
    assert fields["Version"] == "6.1.192-3"
    assert (
        fields["Description"].splitlines()[1] == "This package depends on the latest Linux kernel"
    )
    assert lane.depends(fields) == ["linux-image-6.1.0-57-amd64"]
    assert lane.depends(lane.parse_fields(IMAGE)) == ["kmod", "linux-base", "initramfs-tools"]


def test_a_meta_package_resolves_to_its_kernel_image(monkeypatch: pytest.MonkeyPatch) -> None:
    records = {"linux-image-amd64": META, "linux-image-6.1.0-57-amd64": IMAGE}
    monkeypatch.setattr(lane, "apt_fields", lambda name: lane.parse_fields(records[name]))
    assert lane.resolve("linux-image-amd64") == ("linux-image-6.1.0-57-amd64", "6.1.192-3")
    assert lane.resolve("linux-image-6.1.0-57-amd64") == ("linux-image-6.1.0-57-amd64", "6.1.192-3")


def test_features_come_from_the_build_configuration(tmp_path: Path) -> None:
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "vmlinuz-6.1.0-57-amd64").touch()
    config = boot / "config-6.1.0-57-amd64"
    options = ["KPROBES", "KPROBE_EVENTS", "BPF_JIT", "DEBUG_INFO_BTF"]
    config.write_text("".join(f"CONFIG_{name}=y\n" for name in options))
    kernel = lane.Kernel("linux-image-amd64", "linux-image-6.1.0-57-amd64", "6.1.192-3", tmp_path)
    assert kernel.release == "6.1.0-57-amd64"
    assert kernel.features() == ["kprobes"]  # no ftrace direct calls: no BPF trampolines
    config.write_text(config.read_text() + "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y\n")
    assert kernel.features() == ["kprobes", "fentry"]
    config.write_text("# CONFIG_KPROBES is not set\nCONFIG_KPROBE_EVENTS=y\n")
    assert kernel.features() == []


def test_the_guest_runs_the_selection_with_prebuilt_objects_and_the_expected_features(
    tmp_path: Path,
) -> None:
    kernel = lane.Kernel("k", "k", "1", tmp_path)
    kernel.features = lambda: ["kprobes", "fentry"]  # type: ignore[method-assign]
    out, objects = tmp_path / "out dir", tmp_path / "objects"
    script = lane.guest_script(kernel, out, objects)
    words = shlex.split(script)
    assert "BPFNB_EXPECT_FEATURES=kprobes,fentry" in words
    assert "BPFNB_TEST_OBJECTS_PREBUILT=1" in words and "BPFNB_REQUIRE_KERNEL=1" in words
    assert f"BPFNB_TEST_OBJECTS={objects}" in words
    assert words[words.index(">") + 1] == str(out / "pytest.log")  # quoted: the path has a space
    assert shlex.join(lane.SELECTION) in script


def test_junit_counts(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest" errors="1" failures="2" skipped="3" tests="10" '
        'time="1.5"/></testsuites>'
    )
    result = lane.read_junit(report, lane.Result("6.1", "qemu"))
    assert (result.passed, result.failed, result.skipped) == (4, 3, 3)
    assert not result.ok
    missing = lane.read_junit(tmp_path / "none.xml", lane.Result("6.1", "qemu"))
    assert not missing.ok and "no test report" in missing.problem


@pytest.mark.parametrize("require", ["1", ""])
def test_missing_tools_fail_under_require_and_skip_otherwise(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], require: str
) -> None:
    monkeypatch.setenv("BPFNB_REQUIRE_KERNEL", require)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(lane, "missing_tools", lambda: ["qemu-system-x86", "virtme-ng (PyPI)"])
    assert lane.main([]) == (1 if require else 0)
    out = capsys.readouterr().out
    assert "missing qemu-system-x86, virtme-ng (PyPI)" in out
    assert lane.INSTALL in out
    assert ("failed" if require else "skipped") in out.splitlines()[-1]


@pytest.mark.parametrize("require", ["1", ""])
def test_an_unknown_kernel_package_fails_under_require_and_skips_otherwise(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], require: str
) -> None:
    class NoApt:
        returncode, stdout = 100, ""

    monkeypatch.setenv("BPFNB_REQUIRE_KERNEL", require)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(lane, "missing_tools", lambda: [])
    monkeypatch.setattr(lane.os, "geteuid", lambda: 0)
    monkeypatch.setattr(lane.subprocess, "run", lambda *args, **kwargs: NoApt())
    assert lane.main(["linux-image-no-such-kernel"]) == (1 if require else 0)
    out = capsys.readouterr().out
    assert "apt knows no package 'linux-image-no-such-kernel'" in out
    assert "apt-get update" in out
