"""What bpftrace says on stderr, turned into a :class:`bpfnb.errors.BpftraceError`.

bpftrace reports a program error as ``FILE:LINE:COL-END: ERROR: message``, then the line and a
``~~~`` underline; other failures as ``ERROR: message`` alone, or as plain text on stdout
("No probes to attach"). Locations are in the program bpftrace ran, which has bpfnb's marker
in it: they are mapped back to the text the user wrote.
"""

from __future__ import annotations

import re

from bpfnb.errors import BpftraceError

__all__ = ["IGNORED", "NOTIFY_ATTACHED", "error_from", "is_noise", "original_position"]

#: bpftrace prints this (stderr in 0.17, stdout later) once every probe is attached, when the
#: environment variable of the same name is set.
NOTIFY_ATTACHED = "__BPFTRACE_NOTIFY_PROBES_ATTACHED"
#: stderr lines that are not about the program: bpftrace cannot raise its memlock limit in some
#: containers, which no longer matters since the kernel accounts BPF memory to memcg (5.11).
IGNORED = ("couldn't set RLIMIT_MEMLOCK",)

_LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)(?:-\d+)?: ERROR: (?P<msg>.*)$")
_PLAIN = re.compile(r"^ERROR: (?P<msg>.*)$")


def is_noise(line: str) -> bool:
    """Whether a stderr line says nothing about the program."""
    return NOTIFY_ATTACHED in line or any(text in line for text in IGNORED)


def original_position(ran: str, line: int, column: int, inserted_at: int, inserted: int) -> int:
    """The offset in the user's text of (``line``, ``column``) of the program that ran, which
    has ``inserted`` characters added at offset ``inserted_at`` of the user's text."""
    lines = ran.splitlines(keepends=True)
    offset = sum(len(text) for text in lines[: max(line - 1, 0)]) + max(column - 1, 0)
    if offset >= inserted_at + inserted:
        return offset - inserted
    return min(offset, inserted_at)


def _line_and_column(text: str, offset: int) -> tuple[int, int, str]:
    before = text[:offset]
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    source = text.splitlines()[line - 1] if line <= len(text.splitlines()) else ""
    return line, column, source


def error_from(
    stderr: list[str],
    stdout: list[str],
    returncode: int | None,
    source: str,
    ran: str,
    inserted_at: int,
    inserted: int,
) -> BpftraceError:
    """The error bpftrace reported (``stderr``/``stdout``: the lines it printed that are not
    JSON), located in ``source`` (the user's program; ``ran`` is what bpftrace ran)."""
    said = [line for line in stderr if not is_noise(line)]
    output = "\n".join([*said, *stdout]).strip() + "\n"
    for line in said:
        if found := _LOCATED.match(line):
            offset = original_position(
                ran, int(found["line"]), int(found["col"]), inserted_at, inserted
            )
            where = _line_and_column(source, offset)
            return BpftraceError(found["msg"], *where, output=output)
    for line in said:
        if found := _PLAIN.match(line):
            return BpftraceError(found["msg"], output=output)
    text = [line for line in [*stdout, *said] if line.strip()]
    if text:
        return BpftraceError(text[0].strip(), output=output)
    return BpftraceError(f"bpftrace exited with status {returncode}", output=output)
