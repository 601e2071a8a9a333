"""The typed errors of bpfnb, all rooted at :class:`BpfError`.

Each error renders as a short message in a notebook (``_render_traceback_``) instead of a
traceback into ctypes; the full detail stays on the exception's attributes.
"""

from __future__ import annotations

import difflib
import errno as errno_module
import html
import os
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AttachError",
    "BccMissingError",
    "BpfError",
    "BpftraceError",
    "ClusterError",
    "CompileError",
    "Diagnostic",
    "ElfError",
    "Interrupted",
    "KernelFeatureError",
    "LoadError",
    "MapError",
    "MissingKeyError",
    "NoSuchMapError",
    "NoSuchProgramError",
    "PinError",
    "PrivilegeError",
    "VerifierError",
    "last_error",
    "not_found",
    "remember",
]


#: The last bpfnb error a notebook showed (``bpfnb.last_error``): its ``.log``, ``.diagnostics``
#: and the rest stay reachable without ``sys.last_value``.
last_error: BaseException | None = None


def remember(err: BaseException) -> None:
    """Make ``err`` the last error (what a notebook just showed)."""
    global last_error
    last_error = err


class BpfError(Exception):
    """Base class of every error bpfnb raises on purpose."""

    def __str__(self) -> str:
        # bytes from the bindings read b'name' in Python's repr; a user wrote name.
        # BaseException's own text: a KeyError subclass would quote it.
        return _BYTES_LITERAL.sub(r"'\1'", BaseException.__str__(self))

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback.
        remember(self)
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}", *_notes(self)]

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled whole (an engine's error reaching the notebook): subclasses take other
        # arguments than their message, so rebuild from the message and the attributes.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[BpfError], args: tuple[Any, ...], state: dict[str, Any]) -> BpfError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


_BYTES_LITERAL = re.compile(r"\bb'((?:[^'\\\n]|\\.)*)'")


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
        remember(self)
        lines = [f"\x1b[31mCompileError\x1b[0m: {self}"]
        shown = [d for d in self.diagnostics if d.severity != "note"] or self.diagnostics
        lines += [d.render() for d in shown]
        if not self.diagnostics and self.output:
            lines.append(self.output.rstrip())
        return lines + _notes(self)


class VerifierError(BpfError):
    """The kernel's verifier rejected a program.

    ``log`` is its whole log. ``line`` and ``source`` are the C line of the failing
    instruction (in the cell's own numbering) when the log or the loader knows it,
    ``instruction`` that instruction, and ``hint`` what usually fixes this kind of rejection.
    """

    def __init__(
        self,
        program: str,
        errno: int,
        log: str,
        source: str = "",
        cell: str | None = None,
    ) -> None:
        self.program = program
        self.errno = errno
        self.log = log
        self.summary = _verifier_summary(log) or os.strerror(errno)
        self.instruction = _failing_instruction(log)
        self.line = _failing_line(log)
        if not source and self.line is not None and cell is not None:
            lines = cell.splitlines()
            if 0 < self.line <= len(lines):
                source = f"line {self.line}: {lines[self.line - 1].strip()}"
        self.source = source
        self.hint = _hint(log)
        message = f"program {program!r} rejected by the verifier: {self.summary}"
        super().__init__(message + (f" (at {source})" if source else ""))

    @property
    def failing_instruction(self) -> str:
        """The last instruction the verifier looked at before it gave up."""
        return self.instruction

    def _render_traceback_(self) -> list[str]:
        remember(self)
        lines = [f"\x1b[31mVerifierError\x1b[0m: {self}"]
        if self.instruction:
            lines.append(f"  instruction: {self.instruction}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        lines.append("  (the full verifier log is in .log)")
        return lines + _notes(self)

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<div><b>{label}</b>: <code>{esc(text)}</code></div>"
            for label, text in (("instruction", self.instruction), ("hint", self.hint))
            if text
        )
        return (
            f"<div><b>VerifierError</b>: {esc(str(self))}{rows}<details><summary>verifier log "
            f"({len(self.log.splitlines())} lines)</summary><pre>{esc(self.log)}</pre>"
            "</details></div>"
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


def _failing_instruction(log: str) -> str:
    for line in reversed(log.splitlines()):
        head = line.split(":", 1)[0].strip()
        if head.isdigit():
            return line.strip()
    return ""


# With BTF line info the verifier prints "; <C text> @ <file>:<line>" before an instruction.
_LINE_INFO = re.compile(r"^;.* @ [^:]+:(\d+)\s*$")


def _failing_line(log: str) -> int | None:
    # The source line printed last before the failing instruction.
    lines = log.splitlines()
    failing = _failing_instruction(log)
    end = max((i for i, line in enumerate(lines) if line.strip() == failing), default=len(lines))
    for line in reversed(lines[:end]):
        match = _LINE_INFO.match(line)
        if match and int(match.group(1)) > 0:
            return int(match.group(1))
    return None


# (what the verifier says, what usually fixes it), in the order they are tried.
_HINTS = (
    (
        r"_or_null|invalid mem access 'scalar'",
        "a map lookup returns NULL when the key is absent: check the pointer before using it "
        "(u64 *v = m.lookup(&k); if (!v) return 0;)",
    ),
    (
        r"back-edge|infinite loop|loop is not bounded|unbounded loop",
        "loops need a bound the verifier can see: a constant limit (for (int i = 0; i < 16; "
        "i++)), or bpf_loop()",
    ),
    (
        r"invalid (indirect )?read from stack|uninit|!read_ok",
        "a stack variable is read before it is set: initialise it (struct event_t e = {}; or "
        "__builtin_memset(&e, 0, sizeof(e)))",
    ),
    (
        r"invalid stack off|out of bounds|outside of the allowed|unbounded memory access|"
        r"min value is negative|invalid access to (map value|packet)",
        "an access may fall outside its buffer: check the index or offset against the size "
        "first (if (i >= N) return 0;)",
    ),
    (
        r"GPL",
        "this helper is GPL-only: declare a GPL-compatible license (ELF objects: "
        'char LICENSE[] SEC("license") = "GPL";)',
    ),
    (
        r"too large|too complex|too many states|jumps is too complex",
        "the program is too large or too complex to verify: split it (tail calls, bpf_loop), "
        "unroll less, or branch less",
    ),
)


def _hint(log: str) -> str:
    reason = _verifier_summary(log) + "\n" + log
    return next((hint for pattern, hint in _HINTS if re.search(pattern, reason)), "")


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


class NoSuchProgramError(BpfError, KeyError):
    """A program name that is not there; the message names the programs that are."""


class MissingKeyError(BpfError, KeyError):
    """A key that is not in a map; the message shows the key as the map decodes it."""


def not_found(what: str, name: str, known: list[str]) -> str:
    """``"no map 'call'; did you mean 'calls'? (maps: calls, events)"``."""
    message = f"no {what} {name!r}"
    close = difflib.get_close_matches(name, known, n=3)
    if close:
        message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    return message + f" ({what}s: {', '.join(sorted(known)) or 'none'})"


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


class ClusterError(BpfError):
    """No engine of a cluster did what was asked. ``failures`` holds, for each engine, its
    (host, engine id, step, error)."""

    def __init__(self, message: str, failures: list[tuple[str, int, str, str]] | None = None):
        self.failures = list(failures or [])
        super().__init__(message)

    def _render_traceback_(self) -> list[str]:
        remember(self)
        lines = [f"\x1b[31mClusterError\x1b[0m: {self}"]
        lines += [f"  {host} (engine {e}) at {step}: {err}" for host, e, step, err in self.failures]
        return lines + _notes(self)
