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
    "CompileError",
    "Diagnostic",
    "ElfError",
    "Interrupted",
    "KernelFeatureError",
    "LoadError",
    "MapError",
    "NoSuchMapError",
    "PinError",
    "PrivilegeError",
    "VerifierError",
]


class BpfError(Exception):
    """Base class of every error bpfnb raises on purpose."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback.
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}", *_notes(self)]


def _notes(err: BaseException) -> list[str]:
    # What was added to an error on its way up (PEP 678 notes), e.g. what a failed re-run kept.
    return [f"  {note}" for note in getattr(err, "__notes__", ())]


class Interrupted(KeyboardInterrupt):
    """A long bpfnb call was interrupted (Ctrl-C, or the notebook's stop button) and cleaned
    up; the message says after how long and what was done, e.g. "printer detached"."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[33m{self}\x1b[0m"]


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
        return lines + _notes(self)


class VerifierError(BpfError):
    """The kernel's verifier rejected a program; ``log`` holds its whole log and ``source`` the
    C line of the failing instruction, when the loader knows it (``file:line: text``)."""

    def __init__(self, program: str, errno: int, log: str, source: str = "") -> None:
        self.program = program
        self.errno = errno
        self.log = log
        self.source = source
        self.summary = _verifier_summary(log) or os.strerror(errno)
        message = f"program {program!r} rejected by the verifier: {self.summary}"
        super().__init__(message + (f" (at {source})" if source else ""))

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
        if self.source:
            lines.append(f"  source: {self.source}")
        if self.failing_instruction:
            lines.append(f"  at: {self.failing_instruction}")
        lines.append("  (the full verifier log is in .log)")
        return lines + _notes(self)

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
    """A key or value that does not fit the map's type, an operation the map cannot do, or a
    map definition the kernel refuses (``errno`` is then the kernel's)."""

    errno: int | None = None


class LoadError(BpfError, OSError):
    """The kernel refused a program without a verifier log (a program type, attach type or
    flag it does not take); the message names the program, says why, and gives the errno."""

    def __init__(self, program: str, errno: int, reason: str) -> None:
        self.program = program
        self.reason = reason
        name = errno_module.errorcode.get(errno, str(errno))
        super().__init__(f"program {program!r}: {reason} ({os.strerror(errno)}, {name})")
        self.errno = errno


class NoSuchMapError(MapError, KeyError):
    """A map name that is not there; the message names the maps that are."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # a KeyError would quote it


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
