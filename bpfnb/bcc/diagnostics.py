"""Parse clang's diagnostics (as libbcc prints them) into :class:`Diagnostic` records."""

from __future__ import annotations

import re

from bpfnb.errors import Diagnostic

__all__ = ["CELL_FILE", "parse_diagnostics"]

# The compile step puts `#line 1 "<cell>"` before the user's code, so clang reports positions in
# the cell itself under this file name.
CELL_FILE = "<cell>"

_DIAGNOSTIC = re.compile(
    r"^(?P<file>[^\n]*?):(?P<line>\d+):(?P<column>\d+): "
    r"(?P<severity>fatal error|error|warning|note): (?P<message>.*)$"
)


def parse_diagnostics(output: str, source: str) -> list[Diagnostic]:
    """The diagnostics in ``output`` that point into the cell, with the cell's source lines.

    Diagnostics inside bpfnb's preamble or bcc's headers are kept as notes of the diagnostic
    before them, since the user can only act on the cell.
    """
    lines = source.splitlines()
    found: list[Diagnostic] = []
    for text in output.splitlines():
        match = _DIAGNOSTIC.match(text)
        if not match:
            continue
        where = f"{match['file']}:{match['line']}"
        if match["file"] != CELL_FILE:
            if found:
                found[-1].notes.append(f"{where}: {match['severity']}: {match['message']}")
            else:
                found.append(
                    Diagnostic(0, 0, match["severity"], f"{match['message']} (in {where})")
                )
            continue
        line = int(match["line"])
        found.append(
            Diagnostic(
                line=line,
                column=int(match["column"]),
                severity=match["severity"],
                message=match["message"],
                source_line=lines[line - 1] if 0 < line <= len(lines) else "",
            )
        )
    return found
