"""``EventStream``: events from a perf buffer or a ring buffer, kept as numpy chunks.

With ``background=True`` (what ``BpfObject.stream()`` asks for) a thread drains the rings from
the start into a bounded list of raw payload blocks, so the kernel's buffers keep room while
the notebook runs other code; what falls past ``maxlen`` is counted as discarded. Decoding stays
on the caller's thread and batched: ``poll()`` (and any read of the rows) turns the pending
blocks into one structured array (one numpy step per batch) and appends it to a ring of chunks
holding at most ``maxlen`` rows. Frames are built from the chunks on demand, with
:mod:`bpfnb.frames` naming the columns exactly as ``Map.to_frame()`` does.
"""

from __future__ import annotations

import contextlib
import html
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from bpfnb.closing import Closing
from bpfnb.events.poller import Poller, start_background
from bpfnb.events.records import Batch
from bpfnb.frames import Layout, columns
from bpfnb.lazy import lazy_import
from bpfnb.progress import Progress

if TYPE_CHECKING:
    import asyncio

    import pandas as pd
else:
    pd = lazy_import("pandas")

__all__ = ["EventReader", "EventStream", "StreamStats", "cut_oldest"]

_RECHECK_SECONDS = 0.005
_DRAIN_WAIT_SECONDS = 0.05  # the drain thread's longest sleep between kernel wakeups
# While a drain thread runs, a thread that wants the GIL gets it within this time (Python's
# default is 5 ms). A notebook cell calling a syscall in a tight loop holds the GIL; in 5 ms it
# can fill a 256 KiB ring, so the drain thread must get its turn sooner.
_SWITCH_INTERVAL = 0.0005


class _SwitchInterval:
    """Lowers ``sys.setswitchinterval`` while any drain thread runs, then restores it."""

    _lock = threading.Lock()
    _users = 0
    _saved = 0.0

    @classmethod
    def acquire(cls) -> None:
        with cls._lock:
            if cls._users == 0:
                cls._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(cls._saved, _SWITCH_INTERVAL))
            cls._users += 1

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._users -= 1
            if cls._users == 0:
                sys.setswitchinterval(cls._saved)


class EventReader(Protocol):
    """The kernel side of a stream: a perf buffer or a ring buffer reader."""

    kind: str

    @property
    def fds(self) -> list[int]: ...

    def read(self) -> Batch: ...

    def close(self) -> None: ...


class Counter(Protocol):
    @property
    def count(self) -> int: ...

    def close(self) -> None: ...


NOT_COUNTED = "not counted by the program"


@dataclass
class StreamStats:
    """Where the events went.

    - ``received``: records read from the buffer (including those later discarded);
    - ``lost`` (perf buffers) and ``dropped`` (ring buffers): events the program failed to
      submit, counted by the program itself at each failed submit, so that after a poll
      ``received + lost`` (or ``+ dropped``) is every event produced. ``None`` when the
      program does not count them (an ELF object built without ``<bpfnb/counted.h>``);
    - ``discarded``: received rows pushed out by ``maxlen``;
    - ``kernel_lost``: what the kernel's ``PERF_RECORD_LOST`` records reported so far. They
      arrive late (with the next record), or never once the producer stops: a cross-check.
    """

    received: int = 0
    lost: int | None = 0
    dropped: int | None = 0
    discarded: int = 0
    kernel_lost: int = 0

    def __repr__(self) -> str:
        text = (
            f"received={self.received} lost={self.lost} "
            f"dropped={self.dropped} discarded={self.discarded}"
        )
        if self.lost is None or self.dropped is None:
            text += f" ({'lost' if self.lost is None else 'dropped'} {NOT_COUNTED})"
        if self.kernel_lost:
            text += f" kernel_lost={self.kernel_lost}"
        return text


class EventStream(Closing):
    """Events of one perf or ring buffer map, decoded into a bounded table.

    ``poll()`` reads what is there, ``to_frame()``/``tail()`` show it, ``collect()`` polls for
    a while with a progress bar, ``run_in_background()`` polls on the asyncio loop, ``stats``
    counts every event received, lost, dropped or discarded.
    """

    def __init__(
        self,
        name: str,
        reader: EventReader,
        layout: Layout,
        maxlen: int = 100_000,
        drops: Counter | None = None,
        background: bool = False,
    ) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, not {maxlen}")
        self.name = name
        self.layout = layout
        self.maxlen = maxlen
        self._reader: EventReader | None = reader
        self._drops = drops
        self._poller = Poller(reader.fds)
        self._kind = reader.kind
        self._chunks: deque[np.ndarray] = deque()
        self._rows = 0
        self._received = 0
        self._kernel_lost = 0
        self._discarded = 0
        self._task: asyncio.Task[None] | None = None
        self._final_drops = 0  # the program's submit failures, as of close()
        # Raw payload blocks read but not decoded yet (at most maxlen rows), and the lock that
        # the drain thread and the caller share for the reader and these blocks.
        self._lock = threading.Lock()
        self._pending: deque[np.ndarray] = deque()
        self._pending_rows = 0
        self._drain_error: BaseException | None = None
        self._background_rows = 0  # rows the drain thread read since the last poll
        self._stop_drain = threading.Event()
        self._drainer: threading.Thread | None = None
        if background:
            self._drainer = threading.Thread(
                target=self._drain_loop, name=f"bpfnb-stream-{name}", daemon=True
            )
            _SwitchInterval.acquire()
            self._drainer.start()

    # -- reading ---------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._reader is None

    @property
    def kind(self) -> str:
        """``"perf buffer"`` or ``"ring buffer"``."""
        return self._kind

    def poll(self, timeout: float = 0) -> int:
        """Read every available record; wait up to ``timeout`` seconds for the first ones.

        Returns how many records arrived.
        """
        if self._reader is None:
            return 0
        count = self._read()
        deadline = time.monotonic() + timeout
        while not count and (left := deadline - time.monotonic()) > 0:
            # Kernel wakeups may be batched (perf watermark), so look again every few ms.
            self._poller.wait(min(left, _RECHECK_SECONDS))
            count = self._read()
        return count

    def _read(self) -> int:
        # Read what the rings hold now, then decode it with what the drain thread kept.
        with self._lock:
            if self._drain_error is not None:
                error, self._drain_error = self._drain_error, None
                raise error
            arrived = self._drain() if self._reader is not None else 0
            arrived += self._take_background_rows()
            blocks, self._pending = list(self._pending), deque()
            self._pending_rows = 0
        if blocks:
            self._keep(Batch(blocks).records(self.layout.dtype))
        return arrived

    def _drain(self) -> int:
        # One read of the rings into the pending blocks (the lock is held).
        assert self._reader is not None
        batch = self._reader.read()
        self._kernel_lost += batch.lost
        count = batch.count
        if count:
            self._received += count
            self._pending.extend(batch.blocks)
            self._pending_rows += count
            cut = cut_oldest(self._pending, self._pending_rows, self.maxlen)
            self._pending_rows -= cut
            self._discarded += cut
        return count

    def _drain_loop(self) -> None:
        # The background thread: move records out of the kernel's rings as they arrive.
        while not self._stop_drain.is_set():
            self._poller.wait(_DRAIN_WAIT_SECONDS)
            with self._lock:
                if self._reader is None or self._stop_drain.is_set():
                    return
                try:
                    self._background_rows += self._drain()
                except Exception as err:  # handed to the caller's next poll
                    self._drain_error = err
                    return

    def _take_background_rows(self) -> int:
        # Rows the drain thread read since the last poll: they arrived by this poll too.
        rows, self._background_rows = self._background_rows, 0
        return rows

    def _keep(self, records: np.ndarray) -> None:
        if len(records) > self.maxlen:
            self._discarded += len(records) - self.maxlen
            records = records[-self.maxlen :].copy()  # free the rest of a huge batch now
        self._chunks.append(records)
        self._rows += len(records)
        cut = cut_oldest(self._chunks, self._rows, self.maxlen)
        self._rows -= cut
        self._discarded += cut

    @property
    def stats(self) -> StreamStats:
        """Counts of events received, lost, dropped and discarded so far."""
        failed: int | None = None
        if self._drops is not None:
            failed = self._final_drops if self.closed else self._drops.count
        perf = self._kind == "perf buffer"
        return StreamStats(
            received=self._received,
            lost=failed if perf else 0,
            dropped=0 if perf else failed,
            discarded=self._discarded,
            kernel_lost=self._kernel_lost,
        )

    @property
    def counted(self) -> bool:
        """Whether the program counts its failed submits (so ``lost``/``dropped`` are exact)."""
        return self._drops is not None

    def __len__(self) -> int:
        if self._drainer is not None and not self.closed:
            self._read()
        return self._rows

    # -- results ---------------------------------------------------------------------------------

    def records(self) -> np.ndarray:
        """The retained events as one structured numpy array (oldest first)."""
        if self._drainer is not None:
            self._read()  # what the drain thread holds belongs to the rows already
        if not self._chunks:
            return np.empty(0, dtype=self.layout.dtype)
        if len(self._chunks) > 1:
            merged = np.concatenate(list(self._chunks))
            self._chunks = deque([merged])
        return self._chunks[0]

    def to_frame(self, time: bool = False) -> pd.DataFrame:
        """The retained events as a DataFrame, in the order they were read.

        The index numbers events from the first one this stream received, so a row keeps its
        number while older rows are discarded. A perf buffer has one ring per CPU, read one
        after the other: sort by a time stamp field when the order across CPUs matters.

        With ``time=True`` a wall-clock ``time`` column (UTC) is added, computed from the
        event's ``ts`` field, which must come from ``bpf_ktime_get_ns()`` (CLOCK_MONOTONIC).
        """
        return self._frame(self.records(), time, skip=0)

    def tail(self, n: int = 10, time: bool = False) -> pd.DataFrame:
        """The newest ``n`` events."""
        records = self.records()
        skip = max(len(records) - n, 0)
        return self._frame(records[skip:], time, skip=skip)

    def _frame(self, records: np.ndarray, with_time: bool, skip: int) -> pd.DataFrame:
        data = columns(records, self.layout)
        if with_time:
            if "ts" not in data:
                raise KeyError(
                    f"{self.name}: time=True needs a 'ts' field (from bpf_ktime_get_ns()); "
                    f"the event has {list(data)}"
                )
            offset = _monotonic_to_realtime_ns()
            wall = data["ts"].astype(np.int64) + np.int64(offset)
            data = {"time": pd.to_datetime(wall, unit="ns", utc=True), **data}
        first = self._received - self._pending_rows - self._rows + skip
        index = pd.RangeIndex(first, first + len(records))
        return pd.DataFrame(data, index=index, copy=False)

    def clear(self) -> None:
        """Forget the retained events (the counters keep counting)."""
        self._chunks.clear()
        self._rows = 0

    # -- polling for a while ---------------------------------------------------------------------

    def collect(self, duration: float, progress: bool = True) -> pd.DataFrame:
        """Poll for ``duration`` seconds, then return :meth:`to_frame`.

        Shows a progress bar (a widget in Jupyter, a text line elsewhere) unless
        ``progress=False``. An interrupt (Ctrl-C, or the notebook's stop button) ends the wait
        early and keeps what arrived.
        """
        started = time.monotonic()
        arrived = 0
        bar = Progress(f"{self.name}:", duration, enabled=progress)
        try:
            while (elapsed := time.monotonic() - started) < duration:
                arrived += self.poll(timeout=min(0.1, duration - elapsed))
                bar.update(time.monotonic() - started, f"{arrived} events")
        except KeyboardInterrupt:
            elapsed = time.monotonic() - started
            print(f"{self.name}: interrupted after {elapsed:.1f} s; {arrived} events kept")
        finally:
            bar.close(f"{time.monotonic() - started:.1f} s, {arrived} events")
        with contextlib.suppress(KeyboardInterrupt):
            self.poll()
        return self.to_frame()

    def run_in_background(self, interval: float = 0.2) -> asyncio.Task[None]:
        """Poll every ``interval`` seconds on the running asyncio loop (in Jupyter: the kernel's)
        until :meth:`stop`, :meth:`close` or the owning object's close."""
        if self.closed:
            raise ValueError(f"{self.name}: stream is closed")
        if self._task is None or self._task.done():
            self._task = start_background(self.poll, interval, lambda: self.closed)
        return self._task

    @property
    def running(self) -> bool:
        """True while a background task is polling."""
        return self._task is not None and not self._task.done()

    def stop(self) -> None:
        """Stop background polling (the stream stays open)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def close(self) -> None:
        """Stop polling and release the buffers. Retained events stay readable. Idempotent."""
        if self._reader is None:
            return
        self.stop()
        self._stop_drain.set()
        if self._drainer is not None and self._drainer is not threading.current_thread():
            self._drainer.join()
            _SwitchInterval.release()
            with contextlib.suppress(Exception):  # keep what the rings still hold
                self._read()
        if self._drops is not None:
            with contextlib.suppress(OSError):
                self._final_drops = self._drops.count
            self._drops.close()
        with self._lock:
            reader, self._reader = self._reader, None
        self._poller.close()
        if reader is not None:
            reader.close()

    # -- display ---------------------------------------------------------------------------------

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("polling" if self.running else "open")
        return (
            f"EventStream {self.name!r} ({self._kind}, {state}): "
            f"{self._rows} of max {self.maxlen} rows; {self.stats!r}"
        )

    def _repr_html_(self) -> str:
        esc = html.escape
        stats = self.stats
        cells = "".join(
            f"<td>{NOT_COUNTED if value is None else value}</td>"
            for value in (stats.received, stats.lost, stats.dropped, stats.discarded)
        )
        state = "closed" if self.closed else ("polling" if self.running else "open")
        return (
            f"<div><b>EventStream</b> <code>{esc(self.name)}</code> "
            f"<i>({esc(self._kind)}, {state})</i>: {self._rows} of max {self.maxlen} rows"
            "<table><tr><th>received</th><th>lost</th><th>dropped</th><th>discarded</th></tr>"
            f"<tr>{cells}</tr></table></div>"
        )


def cut_oldest(blocks: deque[Any], rows: int, maxlen: int) -> int:
    """Cut the oldest rows of ``blocks`` (``rows`` rows in all, oldest block first) until at most
    ``maxlen`` remain; return how many were cut.

    A block is a numpy array or a DataFrame: ``block[n:]`` drops its first ``n`` rows (for a
    DataFrame too, as ``[]`` slices rows by position). A block cut in part becomes a view, not a
    copy, so trimming stays cheap on every poll; while each block holds at most ``maxlen`` rows,
    what the view keeps alive stays bounded too.
    """
    cut = 0
    while rows - cut > maxlen:
        excess = rows - cut - maxlen
        oldest = blocks[0]
        if len(oldest) <= excess:
            blocks.popleft()
            cut += len(oldest)
        else:
            blocks[0] = oldest[excess:]
            cut += excess
    return cut


def _monotonic_to_realtime_ns() -> int:
    # Sample both clocks back to back; take the tightest of a few pairs.
    best: tuple[int, int] | None = None
    for _ in range(3):
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        real = time.clock_gettime_ns(time.CLOCK_REALTIME)
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        if best is None or after - before < best[0]:
            best = (after - before, real - (before + after) // 2)
    assert best is not None
    return best[1]
