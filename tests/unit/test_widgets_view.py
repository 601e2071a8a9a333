"""LiveView controls and lifecycle, against a fake map (no kernel needed)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bpfnb.object import BpfObject
from bpfnb.widgets import LiveTable
from bpfnb.widgets import view as base_module


class FakeMap:
    """The part of the Map interface that LiveTable reads."""

    name = "counts"

    def __init__(self, counts: dict[int, int]) -> None:
        self.counts = dict(counts)
        self.closed = False
        self.fail = False

    def to_frame(self) -> pd.DataFrame:
        if self.fail:
            raise OSError(5, "Input/output error")
        return pd.DataFrame(
            {
                "key": np.array(list(self.counts), dtype=np.uint32),
                "value": np.array(list(self.counts.values()), dtype=np.uint64),
            }
        )

    def close(self) -> None:
        self.closed = True


async def wait_for(condition, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_refresh_without_a_loop_updates_data_and_status():
    source = FakeMap({1: 3})
    view = LiveTable(source)
    assert not view.running  # no event loop here: it does not start by itself
    assert view.refresh_count == 1
    source.counts[2] = 9
    data = view.refresh()
    assert data is view.data
    assert list(view.data["key"]) == [2, 1]
    assert view.refresh_count == 2
    assert "2 rows" in view.status
    view.close()


def test_start_needs_a_running_loop():
    view = LiveTable(FakeMap({}))
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        view.start()
    view.close()


def test_bad_interval_is_rejected():
    with pytest.raises(ValueError, match="interval"):
        LiveTable(FakeMap({}), interval=0)
    view = LiveTable(FakeMap({}))
    with pytest.raises(ValueError, match="interval"):
        view.interval = -1
    view.close()


def test_task_refreshes_until_stopped():
    async def scenario() -> None:
        source = FakeMap({1: 1})
        view = LiveTable(source, interval=0.02)
        assert view.running and view._toggle.value
        await wait_for(lambda: view.refresh_count >= 4)
        source.counts[7] = 100
        await wait_for(lambda: 7 in set(view.data["key"]))
        view.stop()
        assert not view.running and not view._toggle.value
        stopped_at = view.refresh_count
        await asyncio.sleep(0.1)
        assert view.refresh_count == stopped_at
        view.close()

    asyncio.run(scenario())


def test_toggle_starts_and_stops():
    async def scenario() -> None:
        view = LiveTable(FakeMap({1: 1}), interval=0.02, autostart=False)
        assert not view.running
        view._toggle.value = True  # what a click does
        assert view.running
        await wait_for(lambda: view.refresh_count >= 3)
        view._toggle.value = False
        assert not view.running
        view.close()

    asyncio.run(scenario())


def test_shorter_interval_applies_without_waiting_out_the_old_one():
    async def scenario() -> None:
        view = LiveTable(FakeMap({1: 1}), interval=3600)
        await wait_for(lambda: view.refresh_count >= 2)  # construction + first task refresh
        view.interval = 0.02
        await wait_for(lambda: view.refresh_count >= 5, timeout=2.0)
        view.close()

    asyncio.run(scenario())


def test_error_stops_the_task_and_shows_in_the_status():
    async def scenario() -> None:
        source = FakeMap({1: 1})
        view = LiveTable(source, interval=0.02)
        source.fail = True
        await wait_for(lambda: not view.running)
        assert "error: OSError" in view.status
        assert not view._toggle.value
        view.close()

    asyncio.run(scenario())


def test_stops_when_the_owner_closes():
    async def scenario() -> None:
        obj = BpfObject("probe", {}, {})
        view = LiveTable(FakeMap({1: 1}), interval=0.02, owner=obj)
        await wait_for(lambda: view.refresh_count >= 2)
        obj.close()
        assert not view.running
        assert "source closed" in view.status
        count = view.refresh_count
        await asyncio.sleep(0.1)
        assert view.refresh_count == count
        view.close()

    asyncio.run(scenario())


def test_stops_when_the_source_closes():
    async def scenario() -> None:
        source = FakeMap({1: 1})
        view = LiveTable(source, interval=0.02)
        source.closed = True
        await wait_for(lambda: not view.running)
        assert "source closed" in view.status
        view.close()

    asyncio.run(scenario())


def test_close_closes_widgets_and_optionally_the_source():
    source = FakeMap({1: 1})
    view = LiveTable(source, close_source=True)
    parts = [view._toggle, view._interval, view._status, view._body, view]
    view.close()
    assert view.closed
    assert all(part.comm is None for part in parts)
    assert source.closed
    with pytest.raises(ValueError, match="closed"):
        view.refresh()
    view.close()  # idempotent


def test_rerunning_the_cell_closes_its_views(monkeypatch):
    parent = {"metadata": {"cellId": "cell-1"}}
    hooks: list = []

    class FakeShell:  # an IPython shell inside ipykernel, as far as views look at it
        kernel = SimpleNamespace(get_parent=lambda: parent)
        events = SimpleNamespace(register=lambda name, fn: hooks.append((name, fn)))

    shell = FakeShell()
    monkeypatch.setattr(base_module, "_shell", lambda: shell)
    first = LiveTable(FakeMap({1: 1}))
    parent["metadata"]["cellId"] = "cell-2"
    other = LiveTable(FakeMap({1: 1}))
    assert [name for name, _ in hooks] == ["pre_run_cell"]  # one hook per shell
    run_hook = hooks[0][1]
    run_hook(SimpleNamespace(cell_id="cell-3"))
    assert not first.closed and not other.closed
    run_hook(SimpleNamespace(cell_id="cell-1"))
    assert first.closed and not other.closed
    run_hook(SimpleNamespace(cell_id=None))
    assert not other.closed
    other.close()


def test_repr_is_stable_text():
    view = LiveTable(FakeMap({1: 1}), sort_by="value", top=5)
    assert repr(view) == "LiveTable('counts', sort_by='value', top=5)"
    view.close()


def test_a_vanished_fd_reads_as_a_closed_source():
    class GoneMap(FakeMap):
        def to_frame(self) -> pd.DataFrame:
            if self.fail:
                raise OSError(9, "Bad file descriptor")
            return super().to_frame()

    async def scenario() -> None:
        source = GoneMap({1: 1})
        view = LiveTable(source, interval=0.02)
        source.fail = True
        await wait_for(lambda: not view.running)
        assert view.status.startswith("stopped (source closed)")
        view.close()

    asyncio.run(scenario())


def test_a_source_it_cannot_read_leaves_no_widgets():
    from ipywidgets.widgets.widget import _instances

    source = FakeMap({1: 1})
    source.fail = True
    before = set(_instances)
    with pytest.raises(OSError):
        LiveTable(source)
    assert set(_instances) == before


def test_close_leaves_no_widget_models_open():
    from ipywidgets.widgets.widget import _instances

    before = set(_instances)
    view = LiveTable(FakeMap({1: 1}))
    assert set(_instances) - before
    view.close()
    assert set(_instances) == before


class SlowRemoteMap(FakeMap):
    """A map whose reads wait on the network, with an awaitable twin as a cluster map has."""

    def __init__(self, counts: dict[int, int]) -> None:
        super().__init__(counts)
        self.answer = asyncio.Event()
        self.blocking_reads = 0

    def to_frame(self) -> pd.DataFrame:
        self.blocking_reads += 1
        return super().to_frame()

    async def to_frame_async(self) -> pd.DataFrame:
        await self.answer.wait()
        self.answer.clear()
        return FakeMap.to_frame(self)


def test_the_task_awaits_a_remote_read_and_the_loop_runs_meanwhile():
    async def scenario() -> None:
        source = SlowRemoteMap({1: 1})
        view = LiveTable(source, interval=0.05)  # starts: a loop runs
        assert source.blocking_reads == 1  # the first drawing, made by the cell itself
        ticks = 0
        for _ in range(20):  # the refresh task is waiting on the engines: the loop is free
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and view.refresh_count == 1
        source.counts[1] = 5
        source.answer.set()
        await wait_for(lambda: view.refresh_count == 2)
        assert list(view.data["value"]) == [5]
        assert source.blocking_reads == 1  # the task never read the blocking way
        view.close()
        source.answer.set()  # a read answered after close draws nothing
        await asyncio.sleep(0.05)
        assert view.refresh_count == 2

    asyncio.run(scenario())
