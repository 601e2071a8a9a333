"""The doctor's findings and how they are printed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

__all__ = ["Check", "Report"]

OK = "ok"
MISSING = "missing"
UNAVAILABLE = "unavailable"


@dataclass
class Check:
    """One finding: ``status`` is ok, missing or unavailable; ``why`` is one line."""

    group: str
    name: str
    status: str
    why: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    def get(self, group: str, name: str) -> Check | None:
        return next((c for c in self.checks if c.group == group and c.name == name), None)

    @property
    def core_ok(self) -> bool:
        """The core path: the bpf() syscall works and bcc compiles a tracepoint program."""
        syscall = self.get("environment", "bpf() syscall")
        compile_ = self.get("environment", "bcc compile")
        return bool(syscall and syscall.ok and compile_ and compile_.ok)

    def to_json(self) -> str:
        return json.dumps(
            {
                "core_ok": self.core_ok,
                "changes": self.changes,
                "warnings": self.warnings,
                "checks": [asdict(c) for c in self.checks],
            },
            indent=2,
        )

    def to_text(self) -> str:
        lines: list[str] = []
        if self.changes:
            lines.append("changes made (--fix):")
            lines += [f"  * {change}" for change in self.changes]
            lines.append("")
        group = None
        for check in self.checks:
            if check.group != group:
                group = check.group
                lines.append(f"{group}:")
            line = f"  {check.name:<22} {check.status:<12} {check.why}"
            if check.fix and not check.ok:
                line += f"\n  {'':<22} {'':<12} -> {check.fix}"
            lines.append(line)
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        lines.append("")
        verdict = "works" if self.core_ok else "does NOT work"
        lines.append(f"core path (bpf() syscall + bcc tracepoint compile): {verdict}")
        return "\n".join(lines)
