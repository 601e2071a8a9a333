"""The doctor's report matches what this kernel really does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PMU = "/sys/bus/event_source/devices"


def _report() -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bpfnb", "doctor", "--json"], capture_output=True, text=True
    )
    report = json.loads(out.stdout)
    report["exit"] = out.returncode
    return report


def _status(report: dict, group: str, name: str) -> dict:
    return next(c for c in report["checks"] if c["group"] == group and c["name"] == name)


def test_core_path_and_exit_status(bcc_ok: None) -> None:
    report = _report()
    assert report["core_ok"] is True
    assert report["exit"] == 0
    assert _status(report, "environment", "bcc compile")["status"] == "ok"


def test_attach_points_that_work_here_are_ok(bcc_ok: None) -> None:
    report = _report()
    for name in ("tracepoint", "uprobe", "perf_event", "socket filter"):
        assert _status(report, "attach points", name)["status"] == "ok", name
    assert _status(report, "map types", "ringbuf")["status"] == "ok"


def test_kprobe_status_matches_the_kernel(bcc_ok: None) -> None:
    kprobe = _status(_report(), "attach points", "kprobe")
    if os.path.exists(f"{PMU}/kprobe"):
        assert kprobe["status"] == "ok"
    else:
        assert kprobe["status"] == "unavailable"
        assert "CONFIG_KPROBES" in kprobe["why"]


def test_fentry_refusal_is_explained(bcc_ok: None) -> None:
    fentry = _status(_report(), "attach points", "fentry")
    if fentry["status"] != "ok":
        assert fentry["status"] == "unavailable"
        assert "tracing" in fentry["why"] or "fentry" in fentry["why"]
