"""``BpftraceProgram``: a bpftrace program run by bpfnb, its maps as DataFrames.

It is what a ``%%bpftrace NAME`` cell binds to NAME, and it behaves like the ``BpfObject`` of a
``%%bpf`` cell where the session and the views look: ``name``, ``maps``, ``closed``,
``close()``, ``on_close_weak()``. Each map reads as a frame (:meth:`BpftraceMap.to_frame`), a
histogram as :meth:`bpfnb.maps.Map.to_histogram`'s frame, so :mod:`bpfnb.plots` and the live
views take them as they are.
"""

from __future__ import annotations

import html
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bpfnb.bpftrace.process import BpftraceProcess
from bpfnb.bpftrace.results import histogram_frame, histogram_kind, value_frame
from bpfnb.bpftrace.script import MARKER, MapInfo
from bpfnb.closing import CloseCallbacks, Closing
from bpfnb.errors import MapError
from bpfnb.lazy import lazy_import

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

__all__ = ["REFRESH_MODES", "BpftraceMap", "BpftraceProgram", "run", "start"]

#: How a live program's maps are read: "signal" asks bpftrace for every map now (SIGUSR1);
#: "prints" takes what the program's own ``print()`` calls (``interval`` probes) last showed.
REFRESH_MODES = ("signal", "prints")


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


class BpftraceMap:
    """One ``@map`` of a bpftrace program, read as a DataFrame.

    While the program runs, each read asks bpftrace for its maps (or, with
    ``refresh="prints"``, takes the program's last ``print()``); once it stopped, reads give
    the maps bpftrace printed as it exited.
    """

    def __init__(self, owner: BpftraceProgram, name: str) -> None:
        self._owner = weakref.ref(owner)
        self.name = name

    @property
    def owner(self) -> BpftraceProgram:
        owner = self._owner()
        if owner is None:
            raise MapError(f"{self.name}: its bpftrace program is gone")
        return owner

    @property
    def closed(self) -> bool:
        """False: the last maps bpftrace printed stay readable after it stops."""
        return False

    @property
    def info(self) -> MapInfo:
        """What the program text says of this map: its key count and aggregation."""
        return self.owner.process.script.maps.get(self.name, MapInfo(self.name, 0))

    @property
    def kind(self) -> str:
        """``"hist"`` for ``hist()``/``lhist()``, ``"stats"`` for ``avg()``/``stats()``, else
        ``"map"``."""
        printed = self.owner.process.output.maps.get(self.name, ("", None))[0]
        if printed:
            return printed
        function = self.info.function
        return {"hist": "hist", "lhist": "hist", "avg": "stats", "stats": "stats"}.get(
            function, "map"
        )

    @property
    def view_kind(self) -> str | None:
        """The live view that fits: ``"log2"``/``"linear"`` for histograms, else None."""
        if self.kind != "hist":
            return None
        return histogram_kind(self.info, self._data(refresh=False))

    def _data(self, refresh: bool = True) -> Any:
        owner = self.owner
        if refresh:
            owner.refresh()
        return owner.process.output.maps.get(self.name, ("", None))[1]

    def to_frame(self, refresh: bool = True) -> pd.DataFrame:
        """The map as a DataFrame: ``key`` columns (``key.0``… for several keys) and ``value``
        (``count``/``average``/``total`` for ``stats()``); a histogram as
        :meth:`to_histogram`. ``refresh=False`` reads what bpftrace printed last."""
        if self.kind == "hist":
            return self.to_histogram(refresh=refresh)
        return value_frame(self._data(refresh), self.info, self.kind)

    def to_histogram(self, kind: str | None = None, refresh: bool = True) -> pd.DataFrame:
        """A ``hist()`` or ``lhist()`` map as rows ``slot``, ``low``, ``high``, ``count`` (after
        a ``key`` section column for a keyed histogram), like
        :meth:`bpfnb.maps.Map.to_histogram`: ``slot`` is the log2 bucket (``hist``) or the
        bucket's first value (``lhist``)."""
        if self.kind != "hist":
            raise MapError(f"{self.name} is not a hist() or lhist() map")
        data = self._data(refresh)
        own = histogram_kind(self.info, data)
        if kind is not None and kind != own:
            raise MapError(f"{self.name} is a {own} histogram, not {kind}")
        return histogram_frame(data, self.info, own)

    def __repr__(self) -> str:
        return f"<BpftraceMap {self.name} ({self.kind}) of {self.owner.name!r}>"


@dataclass(frozen=True)
class BpftraceProbe:
    """One probe of the program as written (e.g. ``tracepoint:syscalls:sys_enter_openat``)."""

    name: str
    owner: Any = field(repr=False, compare=False)
    type: str = "bpftrace"

    @property
    def attach_points(self) -> list[str]:
        return [] if self.owner.closed else [self.name]


class BpftraceProgram(Closing):
    """A bpftrace program run by bpfnb: ``maps`` by name (``"@x"``), ``output`` (its printf
    text), ``close()`` to stop it (idempotent; the maps stay readable)."""

    def __init__(
        self,
        text: str,
        name: str = "bpftrace",
        params: Sequence[str | int] = (),
        refresh: str = "signal",
        executable: str = "bpftrace",
    ) -> None:
        if refresh not in REFRESH_MODES:
            raise ValueError(f"refresh must be one of {REFRESH_MODES}, not {refresh!r}")
        self.name = name
        self.source = text
        self.refresh_mode = refresh
        self._on_close = CloseCallbacks()
        self._maps: dict[str, BpftraceMap] = {}
        self._echoed = 0
        self._closed = False
        self.process = BpftraceProcess(text, params, executable)

    # -- what it holds ---------------------------------------------------------------------------

    @property
    def maps(self) -> dict[str, BpftraceMap]:
        """The program's maps by name: those in its text, and any bpftrace printed."""
        for map_name in [*self.process.script.maps, *self.process.output.maps]:
            if map_name != MARKER and map_name not in self._maps:
                self._maps[map_name] = BpftraceMap(self, map_name)
        return self._maps

    @property
    def programs(self) -> dict[str, BpftraceProbe]:
        """The probes as the program names them (what ``%bpf_list`` shows)."""
        return {probe: BpftraceProbe(probe, self) for probe in self.process.script.probes}

    @property
    def output(self) -> str:
        """The text the program printed (printf, time, ...), the latest 10,000 pieces."""
        return "".join(text for _, text in self.process.texts_since(0))

    @property
    def lost(self) -> int:
        """Events bpftrace reported lost."""
        return self.process.output.lost

    @property
    def closed(self) -> bool:
        """True once bpftrace has stopped (closed, or ended by the program's ``exit()``)."""
        if not self._closed and not self.process.running:
            self.close()
        return self._closed

    # -- running ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Have bpftrace print its maps now (nothing to do once it stopped, or when maps are
        read from the program's own prints)."""
        if self.refresh_mode == "signal" and not self.closed:
            self.process.request_dump()

    def echo(self, write: Callable[[str], None] = _write) -> None:
        """Write the output not yet written."""
        for index, text in self.process.texts_since(self._echoed):
            write(text)
            self._echoed = index + 1

    def wait_attached(self, write: Callable[[str], None] | None = _write) -> None:
        """Wait until bpftrace has attached every probe, writing its output meanwhile."""
        self.process.wait_attached(None if write is None else lambda: self.echo(write))

    def follow(
        self,
        seconds: float,
        write: Callable[[str], None] = _write,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        """Write the program's output as it comes, for ``seconds`` or until bpftrace stops."""
        start = time.monotonic()
        while (done := time.monotonic() - start) < seconds and self.process.running:
            self.process.wait(lambda: False, min(0.1, seconds - done))
            self.echo(write)
            if progress is not None:
                progress(time.monotonic() - start)
        self.echo(write)

    def run_for(
        self,
        seconds: float,
        write: Callable[[str], None] = _write,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        """Run for ``seconds`` (writing the output), then stop: the maps are then final.
        An interrupt stops bpftrace too, before it propagates."""
        try:
            self.follow(seconds, write, progress)
        finally:
            self.close()
            self.echo(write)

    # -- lifecycle -------------------------------------------------------------------------------

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) when the program stops; views stop this way."""
        self._on_close.add(callback)

    def on_close_weak(self, obj: Any, method: str) -> None:
        """Like :meth:`on_close`, but without keeping ``obj`` alive."""
        self._on_close.add_weak(obj, method)

    def close(self) -> None:
        """Stop bpftrace (it detaches and prints its maps one last time). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.process.stop()
        finally:
            errors = self._on_close.run()
        if errors:
            raise errors[0]

    # -- display ---------------------------------------------------------------------------------

    def _state(self) -> str:
        if not self._closed and self.process.running:
            return f"running, pid {self.process.pid}"
        return f"stopped, exit status {self.process.returncode}"

    def _map_rows(self) -> list[tuple[str, str, str]]:
        rows = []
        for map_name, m in self.maps.items():
            data = self.process.output.maps.get(map_name, ("", None))[1]
            size = "empty" if data is None else str(len(data)) if isinstance(data, dict) else "1"
            rows.append((map_name, m.kind, size))
        return rows

    def __repr__(self) -> str:
        lines = [f"BpftraceProgram {self.name!r} ({self._state()})"]
        lines += [f"  probe {probe}" for probe in self.process.script.probes]
        lines += [f"  map {n} [{kind}] {size}" for n, kind, size in self._map_rows()]
        if self.lost:
            lines.append(f"  lost events: {self.lost}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        probes = ", ".join(f"<code>{esc(p)}</code>" for p in self.process.script.probes)
        rows = "".join(
            f"<tr><td><code>{esc(n)}</code></td><td>{esc(kind)}</td><td>{esc(size)}</td></tr>"
            for n, kind, size in self._map_rows()
        )
        out = (
            f"<div><b>BpftraceProgram</b> <code>{esc(self.name)}</code> "
            f"<i>({esc(self._state())})</i><br>probes: {probes or '-'}"
        )
        if rows:
            out += f"<table><tr><th>map</th><th>kind</th><th>entries</th></tr>{rows}</table>"
        if self.lost:
            out += f"<br>lost events: {self.lost}"
        return out + "</div>"


def start(
    text: str,
    name: str = "bpftrace",
    params: Sequence[str | int] = (),
    refresh: str = "signal",
    executable: str = "bpftrace",
    write: Callable[[str], None] | None = _write,
) -> BpftraceProgram:
    """Start bpftrace on program ``text`` and return once its probes are attached.

    ``params`` are its positional parameters (``$1``…). Its errors raise
    :class:`bpfnb.errors.BpftraceError`; an interrupt stops it before propagating. Either way
    no bpftrace process stays behind.
    """
    program = BpftraceProgram(text, name, params, refresh, executable)
    try:
        program.wait_attached(write)
    except BaseException:
        program.close()
        raise
    return program


def run(
    text: str,
    seconds: float,
    name: str = "bpftrace",
    params: Sequence[str | int] = (),
    executable: str = "bpftrace",
    write: Callable[[str], None] = _write,
    progress: Callable[[float], None] | None = None,
) -> BpftraceProgram:
    """Run program ``text`` for ``seconds`` (or until it exits) and return it stopped, with the
    maps bpftrace printed as it ended."""
    program = start(text, name, params, "signal", executable, write)
    program.run_for(seconds, write, progress)
    return program
