"""Parse clang's diagnostics (as libbcc prints them) into :class:`Diagnostic` records."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from bpfnb.errors import Diagnostic

__all__ = ["CELL_FILE", "parse_diagnostics"]

# The compile step puts `#line 1 "<cell>"` before the user's code, so clang reports positions in
# the cell itself under this file name.
CELL_FILE = "<cell>"

_DIAGNOSTIC = re.compile(
    r"^(?P<file>[^\n]*?):(?P<line>\d+):(?P<column>\d+): "
    r"(?P<severity>fatal error|error|warning|note): (?P<message>.*)$"
)


def _cell_line(reported: int, printed: str, lines: list[str]) -> int:
    # bcc's tracepoint rewriter inserts struct definitions into the text it compiles, which
    # shifts the lines after a TRACEPOINT_PROBE past the `#line` mapping. clang prints the
    # offending line under each diagnostic; the cell line holding that text, nearest at or
    # above the reported number (insertions only push lines down), is the real one.
    wanted = printed.strip()
    if not wanted or (0 < reported <= len(lines) and lines[reported - 1].strip() == wanted):
        return reported
    matches = [i + 1 for i, line in enumerate(lines) if line.strip() == wanted]
    above = [n for n in matches if n <= reported]
    if above:
        return max(above)
    return matches[0] if matches else reported


def parse_diagnostics(
    output: str,
    source: str,
    cell_file: str = CELL_FILE,
    compiled: str | None = None,
    column: Callable[[int, int], int] | None = None,
) -> list[Diagnostic]:
    """The diagnostics in ``output`` that point into the cell, with the cell's source lines.

    ``compiled`` is the text clang saw when bpfnb rewrote the cell without moving its lines,
    and ``column(line, column)`` maps a column of it back to the cell's. Diagnostics inside
    bpfnb's preamble or bcc's headers are kept as notes of the diagnostic before them, since
    the user can only act on the cell.
    """
    lines = source.splitlines()
    compiled_lines = compiled.splitlines() if compiled is not None else lines
    found: list[Diagnostic] = []
    output_lines = output.splitlines()
    for index, text in enumerate(output_lines):
        match = _DIAGNOSTIC.match(text)
        if not match:
            continue
        where = f"{match['file']}:{match['line']}"
        if os.path.basename(match["file"]) != cell_file:
            if found:
                found[-1].notes.append(f"{where}: {match['severity']}: {match['message']}")
            else:
                found.append(
                    Diagnostic(0, 0, match["severity"], f"{match['message']} (in {where})")
                )
            continue
        printed = output_lines[index + 1] if index + 1 < len(output_lines) else ""
        line = _cell_line(int(match["line"]), printed, compiled_lines)
        at = int(match["column"])
        found.append(
            Diagnostic(
                line=line,
                column=column(line, at) if column is not None else at,
                severity=match["severity"],
                message=match["message"],
                source_line=lines[line - 1] if 0 < line <= len(lines) else "",
            )
        )
    return found
