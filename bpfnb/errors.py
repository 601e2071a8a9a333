"""The typed errors of bpfnb, all rooted at :class:`BpfError`.

Each error renders as a short message in a notebook (``_render_traceback_``) instead of a
traceback into ctypes; the full detail stays on the exception's attributes.
"""

from __future__ import annotations

import errno as errno_module
import html
import os
from dataclasses import dataclass, field

__all__ = [
    "AttachError",
    "BccMissingError",
    "BpfError",
    "BpftraceError",
    "CompileError",
    "Diagnostic",
    "ElfError",
    "KernelFeatureError",
    "MapError",
    "PinError",
    "PrivilegeError",
    "VerifierError",
]


class BpfError(Exception):
    """Base class of every error bpfnb raises on purpose."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback.
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class BccMissingError(BpfError, ImportError):
    """The distribution's bcc bindings (``python3-bpfcc``) or libbcc are not installed."""


@dataclass(frozen=True)
class Diagnostic:
    """One compiler diagnostic, with its line and column in the user's source."""

    line: int
    column: int
    severity: str
    message: str
    source_line: str = ""
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        text = f"line {self.line}:{self.column}: {self.severity}: {self.message}"
        if self.source_line:
            caret = " " * max(self.column - 1, 0) + "^"
            text += f"\n    {self.source_line}\n    {caret}"
        return text


class CompileError(BpfError):
    """The BPF C source did not compile; ``diagnostics`` holds what clang said."""

    def __init__(self, diagnostics: list[Diagnostic], output: str = "") -> None:
        self.diagnostics = diagnostics
        self.output = output
        errors = [d for d in diagnostics if d.severity in ("error", "fatal error")]
        if errors:
            first = errors[0]
            summary = f"line {first.line}: {first.message}"
            if len(errors) > 1:
                summary += f" (and {len(errors) - 1} more error(s))"
        else:
            summary = output.strip().splitlines()[-1] if output.strip() else "compilation failed"
        super().__init__(summary)

    def _render_traceback_(self) -> list[str]:
        lines = [f"\x1b[31mCompileError\x1b[0m: {self}"]
        shown = [d for d in self.diagnostics if d.severity != "note"] or self.diagnostics
        lines += [d.render() for d in shown]
        if not self.diagnostics and self.output:
            lines.append(self.output.rstrip())
        return lines


class VerifierError(BpfError):
    """The kernel's verifier rejected a program; ``log`` holds its whole log."""

    def __init__(self, program: str, errno: int, log: str) -> None:
        self.program = program
        self.errno = errno
        self.log = log
        self.summary = _verifier_summary(log) or os.strerror(errno)
        super().__init__(f"program {program!r} rejected by the verifier: {self.summary}")

    @property
    def failing_instruction(self) -> str:
        """The last instruction the verifier looked at before it gave up."""
        for line in reversed(self.log.splitlines()):
            head = line.split(":", 1)[0].strip()
            if head.isdigit():
                return line.strip()
        return ""

    def _render_traceback_(self) -> list[str]:
        lines = [f"\x1b[31mVerifierError\x1b[0m: {self}"]
        if self.failing_instruction:
            lines.append(f"  at: {self.failing_instruction}")
        lines.append("  (the full verifier log is in .log)")
        return lines

    def _repr_html_(self) -> str:
        return (
            f"<b>VerifierError</b>: {html.escape(str(self))}<details><summary>verifier log "
            f"({len(self.log.splitlines())} lines)</summary><pre>{html.escape(self.log)}</pre>"
            "</details>"
        )


def _verifier_summary(log: str) -> str:
    # The verifier states its reason just before its "processed N insns" statistics; hints
    # that tools append after those are not the reason.
    lines = [line.strip() for line in log.strip().splitlines()]
    stats = next((i for i, line in enumerate(lines) if line.startswith("processed ")), len(lines))
    for line in reversed(lines[:stats]):
        if line and not line.startswith(("verification time", "stack depth", "HINT:")):
            return line
    return ""


class MapError(BpfError, ValueError):
    """A key or value that does not fit the map's type, or an operation the map cannot do."""


class PinError(BpfError, ValueError):
    """A pin path is invalid or unusable, or a pinned map does not match its definition."""


class AttachError(BpfError):
    """The kernel refused to attach a program where it was asked to."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        self.errno = errno
        if errno:
            message = (
                f"{message}: {os.strerror(errno)} ({errno_module.errorcode.get(errno, errno)})"
            )
        super().__init__(message)


class KernelFeatureError(BpfError):
    """The running kernel lacks what was asked for; the message says what and why."""

    def __init__(self, feature: str, reason: str) -> None:
        self.feature = feature
        self.reason = reason
        super().__init__(f"{feature}: {reason}")


class PrivilegeError(BpfError, PermissionError):
    """The process lacks a capability; the message names it and how to get it."""

    def __init__(self, capability: str, action: str) -> None:
        self.capability = capability
        self.action = action
        super().__init__(
            f"{action} needs {capability}: run the notebook or script as root, or grant the "
            "capability to the Python interpreter (setcap cap_bpf,cap_perfmon+ep <python>)"
        )


class ElfError(BpfError):
    """An object file is malformed; the message names the section and offset."""

    def __init__(self, message: str, section: str | None = None, offset: int | None = None):
        self.section = section
        self.offset = offset
        where = ""
        if section is not None:
            where = f"section {section!r}"
            if offset is not None:
                where += f" at offset {offset:#x}"
            where += ": "
        super().__init__(where + message)


class BpftraceError(BpfError):
    """bpftrace refused a program or stopped with an error; ``output`` holds all it said.

    ``line`` and ``column`` (1-based, 0 when bpftrace gave none) point into the program as
    the user wrote it, and ``source_line`` is that line.
    """

    def __init__(
        self,
        message: str,
        line: int = 0,
        column: int = 0,
        source_line: str = "",
        output: str = "",
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.source_line = source_line
        self.output = output
        super().__init__(f"line {line}:{column}: {message}" if line else message)

    def _render_traceback_(self) -> list[str]:
        lines = [f"\x1b[31mBpftraceError\x1b[0m: {self}"]
        if self.source_line:
            caret = " " * max(self.column - 1, 0) + "^"
            lines += [f"    {self.source_line}", f"    {caret}"]
        return lines
