"""Count every failed event submit of a cell, with no change to the user's code.

A small source pass, run before bcc's own rewriter, wraps each ``NAME.perf_submit(...)``,
``NAME.perf_submit_skb(...)``, ``NAME.ringbuf_output(...)`` and ``NAME.ringbuf_reserve(...)`` in
a statement expression that keeps the call's value and, when it reports a failure (a negative
return, or NULL), adds one to the per-CPU count of map ``NAME`` (see :mod:`bpfnb.bcc.preamble`).
The pass skips comments, string and character literals, and preprocessor lines, and finds each
call's closing parenthesis through nested ones. It adds no newline, so the cell's line numbers
stay; :class:`Insertions` maps the columns of diagnostics back to the cell's own.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

__all__ = ["Insertions", "count_submits", "counted_submits"]

# method -> (type of the call's value, the test that means it failed)
SUBMITS = {
    "perf_submit": ("int", "< 0"),
    "perf_submit_skb": ("int", "< 0"),
    "ringbuf_output": ("int", "< 0"),
    "ringbuf_reserve": ("void *", "== 0"),
}
_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\.\s*(" + "|".join(SUBMITS) + r")\s*\(")


@dataclass
class Insertions:
    """Text the pass inserted, by (line, column) of the rewritten source, to map columns back."""

    by_line: dict[int, list[tuple[int, int]]] = field(default_factory=dict)

    def add(self, line: int, column: int, length: int) -> None:
        self.by_line.setdefault(line, []).append((column, length))

    def original_column(self, line: int, column: int) -> int:
        """The cell's column for ``column`` of the rewritten ``line`` (both 1-based)."""
        shift = sum(length for at, length in self.by_line.get(line, []) if at + length <= column)
        return column - shift


def _skipped_spans(source: str) -> list[tuple[int, int]]:
    # [start, end) of comments, string and char literals and preprocessor lines, in order.
    spans = []
    i, n = 0, len(source)
    line_start = True
    while i < n:
        c = source[i]
        if line_start and c == "#":
            end = i
            while end < n and (source[end] != "\n" or source[end - 1] == "\\"):
                end += 1
            spans.append((i, end))
            i = end
            continue
        if c == "\n":
            line_start = True
            i += 1
            continue
        if not c.isspace():
            line_start = False
        if source.startswith("//", i):
            end = source.find("\n", i)
            end = n if end < 0 else end
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            end = n if end < 0 else end + 2
        elif c in "\"'":
            end = i + 1
            while end < n and source[end] != c and source[end] != "\n":
                end += 2 if source[end] == "\\" else 1
            end = min(end + 1, n)
        else:
            i += 1
            continue
        spans.append((i, end))
        i = end
    return spans


def _inside(
    spans: list[tuple[int, int]], starts: list[int], position: int
) -> tuple[int, int] | None:
    index = bisect.bisect_right(starts, position) - 1
    if index >= 0 and spans[index][0] <= position < spans[index][1]:
        return spans[index]
    return None


def _closing_paren(
    source: str, open_at: int, spans: list[tuple[int, int]], starts: list[int]
) -> int | None:
    depth = 0
    i = open_at
    while i < len(source):
        span = _inside(spans, starts, i)
        if span is not None:
            i = span[1]
            continue
        if source[i] == "(":
            depth += 1
        elif source[i] == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def count_submits(source: str) -> tuple[str, frozenset[str], Insertions]:
    """``source`` with every submit call counted; the maps counted; where text was inserted."""
    spans = _skipped_spans(source)
    starts = [start for start, _ in spans]
    edits: list[tuple[int, int, str, str]] = []  # (call start, call end, prefix, suffix)
    counted: set[str] = set()
    search_from = 0
    while (match := _CALL.search(source, search_from)) is not None:
        search_from = match.end()
        if _inside(spans, starts, match.start()) is not None:
            continue
        if edits and match.start() < edits[-1][1]:
            continue  # a submit inside another one's arguments: the outer one counts
        close = _closing_paren(source, match.end() - 1, spans, starts)
        if close is None:
            continue  # unbalanced: leave it to the compiler to report
        name, method = match.group(1), match.group(2)
        value_type, failed = SUBMITS[method]
        var = f"__bpfnb_r{len(edits)}"
        prefix = f"({{ {value_type}{'' if value_type.endswith('*') else ' '}{var} = "
        suffix = f"; if ({var} {failed}) BPFNB_COUNT_DROP({name}); {var}; }})"
        edits.append((match.start(), close + 1, prefix, suffix))
        counted.add(name)
    out: list[str] = []
    insertions = Insertions()
    done = 0
    for start, end, prefix, suffix in edits:
        out.append(source[done:start])
        _record(insertions, "".join(out), prefix)
        out.append(prefix + source[start:end])
        _record(insertions, "".join(out), suffix)
        out.append(suffix)
        done = end
    out.append(source[done:])
    return "".join(out), frozenset(counted), insertions


def _record(insertions: Insertions, before: str, text: str) -> None:
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    insertions.add(line, column, len(text))


def counted_submits(source: str, enabled: bool = True) -> tuple[str, frozenset[str], Insertions]:
    """:func:`count_submits`, or ``source`` untouched (nothing counted) when not ``enabled``."""
    return count_submits(source) if enabled else (source, frozenset(), Insertions())
