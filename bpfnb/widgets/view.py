"""``LiveView``: the controls, refresh task and lifecycle shared by every live view.

A view is an ``ipywidgets.VBox``: a control bar (start/stop toggle, interval, status line) above
one ``HTML`` body that the subclass draws. Drawing is plain HTML/CSS/SVG text, so one refresh is
one small widget-state message and needs no image rendering.

Refreshing runs as an asyncio task on the kernel's own event loop, never in a thread: widget
traits are only touched from the loop that owns the comms. The task sleeps between refreshes,
so the user can run other cells meanwhile. A source whose reads wait on the network (a
cluster's map, gathered from its engines) offers an awaitable twin of the read
(``to_frame_async`` beside ``to_frame``): the task awaits that one, so the loop keeps running
while the engines answer. A view stops when its source object closes
(``BpfObject.on_close_weak``), and closes when the notebook cell that made it runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import html
import time
import weakref
from typing import Any

import ipywidgets as widgets
import pandas as pd

__all__ = ["LiveView"]

# Shared by every view body; scoped by the bpfnb-view class so it cannot restyle the notebook.
STYLE = """<style>
.bpfnb-view {font-family: var(--jp-code-font-family, monospace); font-size: 12px;}
.bpfnb-view table {border-collapse: collapse;}
.bpfnb-view th, .bpfnb-view td {padding: 1px 8px; text-align: right; white-space: nowrap;}
.bpfnb-view th {border-bottom: 1px solid #999;}
.bpfnb-view td.bpfnb-text {text-align: left;}
.bpfnb-view .bpfnb-track {width: 320px; background: #eee; height: 12px;}
.bpfnb-view .bpfnb-bar {background: #4c72b0; height: 12px;}
.bpfnb-view .bpfnb-empty {color: #777; font-style: italic;}
</style>"""


class LiveView(widgets.VBox):
    """Base class of the live views: start/stop, interval, status line and ``refresh()``.

    Every view takes: ``interval`` (seconds between refreshes), ``autostart`` (start refreshing
    at once when an event loop runs, as in a kernel), ``owner`` (the BpfObject whose close stops
    the view; found by itself for ``%%bpf`` objects) and ``close_source`` (close the map or
    stream with the view). The view reads its source once when made.

    Subclasses implement ``_read()`` (which source method a refresh calls), ``_compute(raw)``
    (turn its result into the DataFrame to show) and ``_draw(data)`` (return the body's HTML).
    ``refresh()`` does all three once.
    """

    def __init__(
        self,
        source: Any,
        *,
        interval: float = 1.0,
        autostart: bool = True,
        owner: Any = None,
        close_source: bool = False,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.source = source
        self._close_source = close_source
        self._data = pd.DataFrame()
        self._running = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._syncing_toggle = False
        self._stop_reason = ""
        self._last_refresh: float | None = None
        self.refresh_count = 0
        self.last_refresh_seconds = 0.0

        self._toggle = widgets.ToggleButton(
            value=False,
            description="start",
            icon="play",
            tooltip="start or stop refreshing",
            layout=widgets.Layout(width="90px"),
        )
        self._interval = widgets.BoundedFloatText(
            value=float(interval),
            min=0.05,
            max=3600.0,
            step=0.5,
            description="interval (s)",
            style={"description_width": "initial"},
            layout=widgets.Layout(width="150px"),
        )
        # A line of its own that wraps within the view's width: beside another view it must
        # not widen its view (a width of 0 that stretches to 100% adds nothing to it).
        self._status_text = "not refreshed yet"
        self._status = widgets.HTML(
            value=_status_html(self._status_text),
            layout=widgets.Layout(width="0", min_width="100%"),
        )
        self._status.add_class("bpfnb-status")
        self._body = widgets.HTML(value="")
        self._body.add_class("bpfnb-view")
        self._toggle.observe(self._on_toggle, names="value")
        self._interval.observe(self._on_interval, names="value")
        extra = self._extra_controls()
        controls = widgets.HBox([self._toggle, self._interval, *extra])
        super().__init__(
            children=[controls, self._status, self._body],
            layout=widgets.Layout(margin="0 24px 8px 0"),  # apart from a view beside it
        )
        self.add_class("bpfnb-live-view")

        try:
            self.refresh()
        except BaseException:
            self.close()  # a source the view cannot read: leave no widgets behind
            raise
        self._watch_owner(owner)
        _cells.register(self)
        if autostart and _running_loop() is not None:
            self.start()

    # -- what subclasses provide -----------------------------------------------------------------

    def _read(self) -> tuple[str, dict[str, Any]] | None:
        """The source method a refresh calls first and its keyword arguments (``("to_frame",
        {})``), or None to call none."""
        return None

    def _compute(self, raw: Any) -> pd.DataFrame:
        """The DataFrame to show, from what the :meth:`_read` call returned (None without)."""
        raise NotImplementedError

    def _draw(self, data: pd.DataFrame) -> str:
        raise NotImplementedError

    def _options(self) -> list[str]:
        """This view's settings as ``name=value`` texts, for the repr."""
        return []

    def _extra_controls(self) -> list[widgets.Widget]:
        """Controls of this kind of view, shown between the interval and the status line."""
        return []

    def _source_status(self) -> str:
        """Extra status text (stream loss counters); empty for maps."""
        stats = getattr(self.source, "stats", None)
        if stats is None:
            return ""
        return f" · {accounting(stats)}"

    # -- public API ------------------------------------------------------------------------------

    @property
    def data(self) -> pd.DataFrame:
        """The DataFrame the view currently shows."""
        return self._data

    @property
    def interval(self) -> float:
        """Seconds between refreshes while running."""
        return float(self._interval.value)

    @interval.setter
    def interval(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"interval must be positive, got {seconds!r}")
        self._interval.value = float(seconds)

    @property
    def running(self) -> bool:
        """Whether the refresh task is running."""
        return self._running

    @property
    def closed(self) -> bool:
        return self._closed

    def refresh(self) -> pd.DataFrame:
        """Read the source once and redraw; returns the new :attr:`data`."""
        if self._closed:
            raise ValueError(f"{type(self).__name__} is closed")
        if _source_closed(self.source):
            self._halt("source closed")
            return self._data
        started = time.perf_counter()
        read = self._read()
        raw = getattr(self.source, read[0])(**read[1]) if read is not None else None
        return self._show(self._compute(raw), started)

    async def _refresh_async(self) -> None:
        # refresh(), with the source's read awaited when it offers an awaitable twin.
        if _source_closed(self.source):
            self._halt("source closed")
            return
        started = time.perf_counter()
        read = self._read()
        raw = None
        if read is not None:
            name, kwargs = read
            twin = getattr(self.source, f"{name}_async", None)
            raw = await twin(**kwargs) if twin is not None else getattr(self.source, name)(**kwargs)
        if self._closed or not self._running:  # stopped or closed while the read was awaited
            return
        self._show(self._compute(raw), started)

    def _show(self, data: pd.DataFrame, started: float) -> pd.DataFrame:
        body = STYLE + self._draw(data)
        self._data = data
        self._body.value = body
        self._last_refresh = time.time()
        self.refresh_count += 1
        self.last_refresh_seconds = time.perf_counter() - started
        self._show_status()
        return data

    def start(self) -> None:
        """Refresh every :attr:`interval` seconds on the running asyncio loop (the kernel's)."""
        if self._closed:
            raise ValueError(f"{type(self).__name__} is closed")
        if self._running:
            return
        loop = _running_loop()
        if loop is None:
            raise RuntimeError(
                "start() needs a running asyncio event loop, as in a Jupyter kernel; "
                "outside one, call refresh() yourself"
            )
        self._running = True
        self._stop_reason = ""
        self._task = loop.create_task(self._loop())
        self._sync_toggle(True)
        self._show_status()

    def stop(self) -> None:
        """Stop refreshing; the last drawing stays."""
        self._halt("")

    def close(self) -> None:
        """Stop, and close this view's widgets."""
        if getattr(self, "_closed", True):  # closed, or its __init__ failed (Widget.__del__)
            return
        self._halt("closed")
        self._closed = True
        _cells.unregister(self)
        controls = self.children[0].children if self.children else ()
        for child in (*controls, self._body, *self.children, self):
            # A control's layout and style are widgets of their own: close those too.
            for part in (getattr(child, "layout", None), getattr(child, "style", None)):
                if isinstance(part, widgets.Widget):
                    part.close()
            if child is not self:
                child.close()
        super().close()
        if self._close_source:
            self.source.close()

    def __repr__(self) -> str:
        # Stable text (no times or counts): it is what nbval compares for a displayed view.
        name = getattr(self.source, "name", "")
        parts = ([repr(name)] if name else []) + self._options()
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- internals -------------------------------------------------------------------------------

    async def _loop(self) -> None:
        self._wake = asyncio.Event()
        try:
            while self._running:
                try:
                    await self._refresh_async()
                except Exception as err:  # noqa: BLE001 - shown in the status line, not raised
                    # A task exception would print into whichever cell runs next; show it here.
                    self._halt(_failure(err))
                    return
                if not self._running:
                    return
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
        except asyncio.CancelledError:
            pass

    def _halt(self, reason: str) -> None:
        was_running = self._running
        self._running = False
        if reason:
            self._stop_reason = reason
        task, self._task = self._task, None
        if task is not None and not task.done() and task is not _current_task():
            task.cancel()
        if was_running or reason:
            self._sync_toggle(False)
            if not self._closed:
                self._show_status()

    def _source_closed_callback(self) -> None:
        if not self._closed:
            self._halt("source closed")

    def _redraw(self) -> None:
        self._body.value = STYLE + self._draw(self._data)

    def _watch_owner(self, owner: Any) -> None:
        if owner is None:
            owner = getattr(self.source, "owner", None)
        if owner is not None and hasattr(owner, "on_close_weak"):
            owner.on_close_weak(self, "_source_closed_callback")

    def _show_status(self) -> None:
        if self._last_refresh is None:
            text = "not refreshed yet"
        else:
            stamp = time.strftime("%H:%M:%S", time.localtime(self._last_refresh))
            text = f"refreshed {stamp} · {len(self._data)} rows{self._source_status()}"
        if not self._running:
            text = f"stopped ({self._stop_reason}) · {text}" if self._stop_reason else text
        self._set_status(text)

    def _set_status(self, text: str) -> None:
        self._status_text = text
        self._status.value = _status_html(text)

    @property
    def status(self) -> str:
        """The status line's text: when the view last refreshed, how many rows, what stopped it."""
        return self._status_text

    def _sync_toggle(self, running: bool) -> None:
        self._syncing_toggle = True
        try:
            self._toggle.value = running
            self._toggle.description = "stop" if running else "start"
            self._toggle.icon = "stop" if running else "play"
        finally:
            self._syncing_toggle = False

    def _on_toggle(self, change: dict[str, Any]) -> None:
        if self._syncing_toggle:
            return
        if change["new"]:
            try:
                self.start()
            except (RuntimeError, ValueError) as err:
                self._sync_toggle(False)
                self._set_status(str(err))
        else:
            self.stop()

    def _on_interval(self, change: dict[str, Any]) -> None:
        # Wake the sleeping task so a shorter interval applies now, not after the old one.
        if self._wake is not None:
            self._wake.set()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def _failure(err: Exception) -> str:
    # EBADF: the map's fd went away under the view (its object closed without telling it).
    if isinstance(err, OSError) and err.errno == errno.EBADF:
        return "source closed"
    return f"error: {type(err).__name__}: {err}"


def _status_html(text: str) -> str:
    return f'<div style="white-space: normal; overflow-wrap: anywhere">{html.escape(text)}</div>'


def accounting(stats: Any) -> str:
    """``lost 0 · dropped 0`` of a stream's stats, saying so where the program counts none."""
    return " · ".join(
        f"{what} {'not counted' if value is None else value}"
        for what, value in (("lost", stats.lost), ("dropped", stats.dropped))
    )


def _source_closed(source: Any) -> bool:
    closed = getattr(source, "closed", False)
    return bool(closed) if not callable(closed) else False


class _CellTracker:
    """Closes the views a notebook cell made when that same cell runs again.

    Jupyter front ends send the cell's id with each execute request (``metadata.cellId``);
    IPython passes it to ``pre_run_cell`` hooks. Without an id (a terminal, nbclient) nothing is
    tracked: re-running cannot be told apart from running new code.
    """

    def __init__(self) -> None:
        self._views: dict[str, weakref.WeakSet[LiveView]] = {}
        self._hooked: weakref.WeakSet[Any] = weakref.WeakSet()
        self._cell_of: weakref.WeakKeyDictionary[LiveView, str] = weakref.WeakKeyDictionary()

    def register(self, view: LiveView) -> None:
        shell = _shell()
        if shell is None:
            return
        self._hook(shell)
        cell = _current_cell_id(shell)
        if cell:
            self._views.setdefault(cell, weakref.WeakSet()).add(view)
            self._cell_of[view] = cell

    def unregister(self, view: LiveView) -> None:
        cell = self._cell_of.pop(view, None)
        if cell and cell in self._views:
            self._views[cell].discard(view)
            if not self._views[cell]:
                del self._views[cell]

    def _hook(self, shell: Any) -> None:
        if shell in self._hooked:
            return
        shell.events.register("pre_run_cell", self._pre_run_cell)
        self._hooked.add(shell)

    def _pre_run_cell(self, info: Any = None) -> None:
        cell = getattr(info, "cell_id", None)
        if not cell or cell not in self._views:
            return
        for view in list(self._views.pop(cell)):
            with contextlib.suppress(Exception):
                view.close()


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _current_cell_id(shell: Any) -> str:
    kernel = getattr(shell, "kernel", None)
    get_parent = getattr(kernel, "get_parent", None)
    if get_parent is None:
        return ""
    try:
        parent = get_parent()
    except Exception:  # noqa: BLE001 - no parent message outside a request
        return ""
    return str((parent or {}).get("metadata", {}).get("cellId") or "")


_cells = _CellTracker()
