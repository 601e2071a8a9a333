"""One session per IPython shell: the live objects by name, and closing them all at exit."""

from __future__ import annotations

import atexit
import html
from collections.abc import Callable
from typing import Any

from bpfnb.object import BpfObject

__all__ = ["Session", "session_for"]


class Session:
    """Live ``BpfObject``s by name. Replacing a name closes the object it held only once its
    successor is loaded and attached."""

    def __init__(self, namespace: dict[str, Any] | None = None) -> None:
        self.objects: dict[str, BpfObject] = {}
        self.views: dict[str, Any] = {}  # live views by the %bpf_show target that made them
        self.namespace = namespace
        atexit.register(self.close_all)

    def replace(self, name: str, create: Callable[[], BpfObject]) -> BpfObject:
        """Create the object called ``name``, bind it, and then close the one it replaces.

        When ``create`` fails (a compile, verifier or attach error, an interrupt), the previous
        object stays live and bound, and the error says so.
        """
        try:
            obj = create()
        except BaseException as err:
            previous = self.objects.get(name)
            if previous is not None and not previous.closed:
                _add_note(err, f"{name} still holds the previous version, which stays attached")
            raise
        old = self.objects.get(name)
        self.objects[name] = obj
        if self.namespace is not None:
            self.namespace[name] = obj
        if old is not None and old is not obj:
            old.close()
        return obj

    def close(self, name: str) -> bool:
        """Close the object called ``name``; False when there was none."""
        obj = self.objects.pop(name, None)
        if obj is None:
            return False
        obj.close()
        return True

    def close_all(self) -> None:
        for name in list(self.objects):
            self.close(name)

    def listing(self) -> Listing:
        return Listing({name: obj for name, obj in self.objects.items() if not obj.closed})


def _add_note(err: BaseException, note: str) -> None:
    # BaseException.add_note() came with Python 3.11 (PEP 678); the attribute works before.
    err.__notes__ = [*getattr(err, "__notes__", []), note]


class Listing:
    """What ``%bpf_list`` shows: one row per live object."""

    def __init__(self, objects: dict[str, BpfObject]) -> None:
        self.objects = objects

    def _rows(self) -> list[tuple[str, str, str]]:
        rows = []
        for name, obj in self.objects.items():
            points = [p for prog in obj.programs.values() for p in prog.attach_points]
            rows.append((name, ", ".join(points) or "not attached", ", ".join(obj.maps) or "-"))
        return rows

    def __repr__(self) -> str:
        if not self.objects:
            return "no live BPF objects"
        return "\n".join(f"{name}: {points}; maps: {maps}" for name, points, maps in self._rows())

    def _repr_html_(self) -> str:
        if not self.objects:
            return "<i>no live BPF objects</i>"
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in self._rows()
        )
        return f"<table><tr><th>name</th><th>attached to</th><th>maps</th></tr>{body}</table>"


_SESSIONS: dict[int, Session] = {}


def session_for(shell: Any) -> Session:
    """The session of an IPython shell (created on first use)."""
    key = id(shell)
    if key not in _SESSIONS:
        _SESSIONS[key] = Session(shell.user_ns)
    return _SESSIONS[key]
