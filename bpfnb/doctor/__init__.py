"""``python -m bpfnb doctor``: what works on this machine, and ``--fix`` for what can be set up."""

from __future__ import annotations

import argparse
import os
import sys

from bpfnb.doctor import headers
from bpfnb.doctor.environment import environment_checks
from bpfnb.doctor.report import Check, Report
from bpfnb.doctor.trials import attach_checks, map_checks, program_type_checks
from bpfnb.link import sweep_stale_probes
from bpfnb.sys import mounts

__all__ = ["Check", "Report", "fix", "main", "run"]

LAYOUT_WARNING = (
    "bcc compiles against kernel headers of another release: struct layouts read through them "
    "(task_struct, sk_buff, ...) may differ from the running kernel's. Tracepoint args are safe, "
    "because bcc reads their format from tracefs."
)


def fix(report: Report) -> None:
    """Set up what can safely be set up, recording each change on ``report``."""
    for step in (mounts.ensure_tracefs, mounts.ensure_bpffs):
        try:
            done = step()
        except OSError as err:
            report.warnings.append(f"could not {step.__name__.replace('_', ' ')}: {err}")
        else:
            if done:
                report.changes.append(done)
    try:
        for entry in sweep_stale_probes():
            report.changes.append(f"removed stale bpfnb probe {entry} (its process is gone)")
    except OSError as err:
        report.warnings.append(f"could not sweep stale probes: {err}")
    try:
        linked = headers.link_nearest()
    except OSError as err:
        report.warnings.append(f"could not link kernel headers: {err}")
    else:
        if linked:
            report.changes.append(linked.describe())
    target = os.path.realpath(headers.build_dir())
    if headers.usable(target) and os.uname().release not in target:
        report.warnings.append(LAYOUT_WARNING)


def run(apply_fix: bool = False) -> Report:
    """Run every check (after ``--fix`` when asked) and return the report."""
    report = Report()
    if apply_fix:
        fix(report)
    for check in environment_checks():
        report.add(check)
    if report.get("environment", "bpf() syscall").ok:  # type: ignore[union-attr]
        for check in program_type_checks() + map_checks() + attach_checks():
            report.add(check)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bpfnb doctor", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print a machine-readable report")
    parser.add_argument(
        "--fix", action="store_true", help="mount tracefs/bpffs and link kernel headers if needed"
    )
    args = parser.parse_args(argv)
    report = run(apply_fix=args.fix)
    print(report.to_json() if args.json else report.to_text())
    return 0 if report.core_ok else 1


if __name__ == "__main__":
    sys.exit(main())
