"""``BpfObject``: what a ``%%bpf`` cell or an ELF load returns, and what closes it all."""

from __future__ import annotations

import html
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bpfnb.closing import Closing

__all__ = ["BpfObject", "Link", "Program"]


class Link(Protocol):
    """One attachment of a program. ``close()`` detaches it and is idempotent."""

    @property
    def kind(self) -> str: ...

    @property
    def target(self) -> str: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class CallbackLink:
    """A link detached by calling a function (for attachments made through bcc)."""

    kind: str
    target: str
    detach: Callable[[], None] = field(repr=False, compare=False)
    _state: dict[str, bool] = field(default_factory=dict, repr=False, compare=False)

    @property
    def closed(self) -> bool:
        return self._state.get("closed", False)

    def close(self) -> None:
        if not self._state.get("closed"):
            self._state["closed"] = True
            self.detach()


@dataclass
class Program:
    """A loaded program: its fd, type and where it is attached.

    ``fd`` is an int (owned by whoever loaded it: bcc, or an :class:`bpfnb.sys.FD`).
    """

    name: str
    fd: int
    type: str
    section: str = ""
    links: list[Link] = field(default_factory=list)
    owner: Any = field(default=None, repr=False)

    @property
    def attach_points(self) -> list[str]:
        return [
            f"{link.kind}:{link.target}" if link.kind else link.target
            for link in self.links
            if not getattr(link, "closed", False)
        ]

    @property
    def tag(self) -> str:
        """The kernel's tag (hash) of the program's instructions."""
        from bpfnb.sys import bpf

        return bytes(bpf.prog_info(self.fd).tag).hex()

    @property
    def id(self) -> int:
        """The kernel's id of the program."""
        from bpfnb.sys import bpf

        return int(bpf.prog_info(self.fd).id)


class BpfObject(Closing):
    """Programs, maps and links loaded together. ``close()`` detaches and frees everything.

    Closing is idempotent; the object is also a context manager. Anything that must stop when
    the object closes (a stream, a live view) registers through :meth:`on_close`.
    """

    def __init__(
        self,
        name: str,
        programs: Mapping[str, Program],
        maps: Mapping[str, Any],
        closers: list[Callable[[], None]] | None = None,
        source: str = "",
    ) -> None:
        self.name = name
        self.programs: dict[str, Program] = dict(programs)
        self.maps: dict[str, Any] = dict(maps)
        self.source = source
        # Run last-in first-out at close: links first, then what owns programs and maps.
        self._closers: list[Callable[[], None]] = list(closers or [])
        self._on_close: list[Callable[[], None]] = []
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def links(self) -> list[tuple[str, Link]]:
        """Every attachment, as (program name, link)."""
        return [(name, link) for name, prog in self.programs.items() for link in prog.links]

    def add_link(self, program: str, link: Link) -> Link:
        """Record an attachment made for ``program`` so that ``close()`` detaches it."""
        if self._closed:
            link.close()
            raise ValueError(f"{self.name}: object is closed")
        self.programs[program].links.append(link)
        return link

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) when the object closes; views and streams stop this way."""
        if self._closed:
            callback()
        else:
            self._on_close.append(callback)

    def on_close_weak(self, obj: Any, method: str) -> None:
        """Like :meth:`on_close`, but without keeping ``obj`` alive."""
        ref = weakref.ref(obj)

        def call() -> None:
            target = ref()
            if target is not None:
                getattr(target, method)()

        self.on_close(call)

    def stream(
        self, name: str, maxlen: int = 100_000, event_type: Any = None, **options: Any
    ) -> Any:
        """An :class:`bpfnb.events.EventStream` over the perf or ring buffer map ``name``.

        ``options`` go to :func:`bpfnb.events.open_stream` (e.g. ``perf_pages``).
        """
        from bpfnb.events import open_stream

        return open_stream(self, name, maxlen=maxlen, event_type=event_type, **options)

    def close(self) -> None:
        """Detach every program and close every fd. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        for callback in self._on_close:
            _collect(callback, errors)
        for prog in self.programs.values():
            for link in reversed(prog.links):
                _collect(link.close, errors)
        # Mark every Map closed before its owner frees the fd, so that nothing (a live view, a
        # stream) reads a reused fd number afterwards.
        for map_ in self.maps.values():
            close_map = getattr(map_, "close", None)
            if close_map is not None:
                _collect(close_map, errors)
        for closer in reversed(self._closers):
            _collect(closer, errors)
        self._on_close.clear()
        self._closers.clear()
        if errors:
            raise errors[0]

    # -- display ---------------------------------------------------------------------------------

    def _map_rows(self) -> list[tuple[str, str, str, str, str]]:
        rows = []
        for name, m in self.maps.items():
            rows.append(
                (
                    name,
                    str(getattr(m, "type_name", getattr(m, "type", ""))),
                    str(getattr(m, "key_type_name", "")),
                    str(getattr(m, "value_type_name", "")),
                    str(getattr(m, "max_entries", "")),
                )
            )
        return rows

    def __repr__(self) -> str:
        state = "closed" if self._closed else "live"
        lines = [f"BpfObject {self.name!r} ({state})"]
        for prog in self.programs.values():
            where = ", ".join(prog.attach_points) or "not attached"
            lines.append(f"  program {prog.name} [{prog.type}] -> {where}")
        for name, kind, key, value, size in self._map_rows():
            lines.append(f"  map {name} [{kind}] {key} -> {value}, max {size}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        state = "closed" if self._closed else "live"
        esc = html.escape
        prog_rows = "".join(
            f"<tr><td><code>{esc(p.name)}</code></td><td>{esc(p.type)}</td>"
            f"<td>{esc(', '.join(p.attach_points) or 'not attached')}</td></tr>"
            for p in self.programs.values()
        )
        map_rows = "".join(
            "<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>"
            for row in self._map_rows()
        )
        out = f"<div><b>BpfObject</b> <code>{esc(self.name)}</code> <i>({state})</i>"
        if prog_rows:
            out += (
                "<table><tr><th>program</th><th>type</th><th>attached to</th></tr>"
                f"{prog_rows}</table>"
            )
        if map_rows:
            out += (
                "<table><tr><th>map</th><th>type</th><th>key</th><th>value</th>"
                f"<th>max entries</th></tr>{map_rows}</table>"
            )
        return out + "</div>"


def _collect(action: Callable[[], None], errors: list[BaseException]) -> None:
    try:
        action()
    except Exception as err:  # keep closing the rest; report the first failure
        errors.append(err)
