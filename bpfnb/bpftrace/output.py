"""Everything ``bpftrace -f json`` prints, kept as it arrives: maps, text, errors, state.

Map dumps (bpftrace 0.17 prints every non-empty map on SIGUSR1 and at exit, sorted by name)
end with bpfnb's marker map (see :mod:`bpfnb.bpftrace.script`): the dump is the run of map
prints in name order that the marker closes, and every map it left out is empty. A map the
program prints itself (``print(@x)``) just updates that map.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from typing import Any

from bpfnb.bpftrace.diagnostics import NOTIFY_ATTACHED, is_noise
from bpfnb.bpftrace.script import MARKER

__all__ = ["MAP_TYPES", "BpftraceOutput"]

#: The JSON message types that carry maps.
MAP_TYPES = ("map", "hist", "stats")


class BpftraceOutput:
    """What bpftrace printed so far, fed line by line.

    ``maps``: name → (JSON type, data); data None when the map is empty, type "" when it was
    never printed. ``texts``: (number, text) of printf and other text output, the latest
    ``max_texts``. ``errors``: stderr lines; ``plain``: stdout lines that are not JSON.
    """

    def __init__(self, known_maps: tuple[str, ...] = (), max_texts: int = 10_000) -> None:
        self.known_maps = known_maps
        self.maps: dict[str, tuple[str, Any]] = {}
        self.texts: deque[tuple[int, str]] = deque(maxlen=max_texts)
        self.errors: list[str] = []
        self.plain: list[str] = []
        self.attached = False
        self.probe_count = 0
        self.lost = 0
        self.dumps = 0
        self.updates = 0
        self._text_ids = itertools.count()
        self._run: list[str] = []

    def texts_since(self, index: int) -> list[tuple[int, str]]:
        """Text output numbered ``index`` and later, as (number, text)."""
        return [(i, text) for i, text in self.texts if i >= index]

    def on_stderr(self, line: str) -> None:
        """One line bpftrace wrote to stderr (without its newline)."""
        if NOTIFY_ATTACHED in line:
            self.attached = True
        elif not is_noise(line):
            self.errors.append(line)

    def on_stdout(self, line: str) -> None:
        """One line bpftrace wrote to stdout (without its newline)."""
        if line.strip() == NOTIFY_ATTACHED:
            self.attached = True
            return
        try:
            message = json.loads(line)
            kind, data = message["type"], message["data"]
        except (ValueError, TypeError, KeyError):
            self._run = []
            if line.strip():
                self.plain.append(line)
                self._text(line + "\n")
            return
        if kind in MAP_TYPES and isinstance(data, dict):
            for name, value in data.items():
                self._on_map(kind, name, value)
            return
        self._run = []
        if kind == "printf":
            self._text(str(data))
        elif kind == "attached_probes":
            self.probe_count = int(data.get("probes", 0))
        elif kind == "lost_events":
            lost = int(data.get("events", 0))
            self.lost += lost
            self._text(f"(bpftrace lost {lost} events)\n")
        elif isinstance(data, str):
            self._text(data if data.endswith("\n") else data + "\n")
        else:
            self._text(line + "\n")

    def _on_map(self, kind: str, name: str, value: Any) -> None:
        if name == MARKER:
            printed = set(self._run)
            for known in set(self.maps) | set(self.known_maps):
                if known not in printed:
                    self.maps[known] = (self.maps.get(known, ("", None))[0], None)
            self._run = []
            self.dumps += 1
            return
        if self._run and name <= self._run[-1]:
            self._run = []
        self._run.append(name)
        self.maps[name] = (kind, value)
        self.updates += 1

    def _text(self, text: str) -> None:
        self.texts.append((next(self._text_ids), text))
