"""What bpfnb reads from a bpftrace program's text: its probes, its maps (with their key counts
and aggregation functions), and where to add the end-of-dump marker.

bpftrace (0.17) prints its maps on SIGUSR1 sorted by name, with nothing after the last one.
bpfnb sets a map whose name sorts after any a program would use in ``BEGIN``: the dump has
ended when that map is printed. A lexer that knows comments and strings is all this needs; the
program itself is parsed by bpftrace.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["MARKER", "MapInfo", "Script", "Token", "parse", "tokens", "with_marker"]

#: The map bpfnb adds: '@' then 24 'z's, after every name a program uses in byte order.
MARKER = "@" + "z" * 24

_TOKEN = re.compile(
    r"""
    (?P<comment>//[^\n]*|/\*.*?\*/|^[ \t]*\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*")
  | (?P<map>@[A-Za-z_0-9]*)
  | (?P<word>[A-Za-z_$][A-Za-z_0-9$]*)
  | (?P<space>\s+)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL | re.MULTILINE,
)
_AGGREGATIONS = {"count", "sum", "avg", "min", "max", "stats", "hist", "lhist"}


@dataclass(frozen=True)
class Token:
    kind: str  # "map", "word", "string", or "other" (one character of punctuation)
    text: str
    start: int


@dataclass
class MapInfo:
    """One ``@map`` of a program: how many keys it has (0: a scalar map) and the aggregation
    function assigned to it (``"count"``, ``"hist"``…; ``""`` for plain assignments)."""

    name: str
    keys: int | None = None
    function: str = ""


@dataclass
class Script:
    """The parts of a bpftrace program bpfnb uses."""

    text: str
    probes: list[str] = field(default_factory=list)
    maps: dict[str, MapInfo] = field(default_factory=dict)
    begin_body: int | None = None  # offset just after BEGIN's '{'


def tokens(text: str) -> Iterator[Token]:
    """The program's tokens, comments and whitespace left out."""
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind not in ("comment", "space"):
            yield Token(kind, match.group(), match.start())


def parse(text: str) -> Script:
    """Probes (as written, e.g. ``"tracepoint:syscalls:sys_enter_getppid"``), maps and the
    ``BEGIN`` block of a bpftrace program."""
    script = Script(text)
    toks = list(tokens(text))
    _find_probes(script, toks)
    _find_maps(script, toks)
    return script


def _find_probes(script: Script, toks: list[Token]) -> None:
    depth = 0
    header: list[Token] = []
    for tok in toks:
        if tok.text == "{" and tok.kind == "other":
            if depth == 0:
                names = _probe_names(script.text, header)
                script.probes += names
                if "BEGIN" in names and script.begin_body is None:
                    script.begin_body = tok.start + 1
            depth += 1
        elif tok.text == "}" and tok.kind == "other":
            depth = max(depth - 1, 0)
            if depth == 0:
                header = []
        elif depth == 0:
            if tok.text == ";":
                header = []
            else:
                header.append(tok)


def _probe_names(text: str, header: list[Token]) -> list[str]:
    if not header or header[0].text in ("struct", "union", "enum", "config"):
        return []
    start = header[0].start
    end = header[-1].start + len(header[-1].text)
    raw = text[start:end]
    # A predicate starts at a '/' after whitespace; probe specs hold '/' only inside paths.
    raw = re.split(r"\s/", raw, maxsplit=1)[0]
    return [name.strip() for name in raw.split(",") if name.strip()]


def _find_maps(script: Script, toks: list[Token]) -> None:
    for i, tok in enumerate(toks):
        if tok.kind != "map" or tok.text == MARKER:
            continue
        info = script.maps.setdefault(tok.text, MapInfo(tok.text))
        after = i + 1
        if after < len(toks) and toks[after].text == "[":
            keys, after = _subscript(toks, after)
            if info.keys is None:
                info.keys = keys
        if (
            not info.function
            and after + 2 < len(toks)
            and toks[after].text == "="
            and toks[after + 1].text in _AGGREGATIONS
            and toks[after + 2].text == "("
        ):
            info.function = toks[after + 1].text
    for info in script.maps.values():
        if info.keys is None:
            info.keys = 0


def _subscript(toks: list[Token], open_at: int) -> tuple[int, int]:
    # (number of keys, index after the closing ']') of the subscript opening at toks[open_at].
    depth = 0
    commas = 0
    empty = True
    for i in range(open_at, len(toks)):
        text = toks[i].text
        if toks[i].kind == "other" and text in "([{":
            depth += 1
        elif toks[i].kind == "other" and text in ")]}":
            depth -= 1
            if depth == 0:
                return (0 if empty else commas + 1), i + 1
        elif depth == 1:
            empty = False
            commas += text == ","
    return 0, len(toks)


def with_marker(script: Script) -> tuple[str, int, int]:
    """The program with the marker map set in ``BEGIN`` (added when there is none); also the
    offset and length of the inserted text, to map bpftrace's error columns back."""
    statement = f" {MARKER} = 1;"
    if script.begin_body is not None:
        at = script.begin_body
        return script.text[:at] + statement + script.text[at:], at, len(statement)
    suffix = "" if script.text.endswith("\n") else "\n"
    return f"{script.text}{suffix}BEGIN {{{statement} }}\n", len(script.text), 0
