"""How an engine's answer becomes a value or a Failure, with fake ipyparallel results."""

from __future__ import annotations

from bpfnb.cluster.engine import Failure
from bpfnb.cluster.remote import Engines, Pending


class FakeResult:
    def __init__(self, value=None, error: Exception | None = None, ready: bool = True) -> None:
        self.value, self.error, self._ready = value, error, ready

    def ready(self) -> bool:
        return self._ready

    def wait(self, timeout=None) -> bool:
        return self._ready

    def get(self, timeout=None):
        if self.error is not None:
            raise self.error
        return self.value


class RemoteError(Exception):
    """Shaped as ipyparallel's: the remote exception's name and text."""

    def __init__(self, ename: str, evalue: str) -> None:
        super().__init__(f"[Engine Exception] {ename}: {evalue}")
        self.ename, self.evalue = ename, evalue


def test_answers_failures_deaths_and_silence() -> None:
    engine_side = Failure(-1, "to_frame", "MapError: no such map", "h1")
    pending = Pending(
        "to_frame",
        {
            0: FakeResult(value=42),
            1: FakeResult(value=engine_side),
            2: FakeResult(error=RemoteError("EngineError", "Engine 2 died while running task")),
            3: FakeResult(error=RemoteError("ImportError", "No module named 'bpfnb'")),
            4: FakeResult(ready=False),
        },
    )
    out = Engines(client=None).wait(pending, timeout=0.01)
    assert out[0] == 42
    assert out[1] == Failure(1, "to_frame", "MapError: no such map", "h1")
    assert (out[2].error, out[2].gone) == ("died", True)
    assert (out[3].error, out[3].gone) == ("ImportError: No module named 'bpfnb'", False)
    assert (out[4].error, out[4].gone) == ("no answer within 0.01 s", True)
    assert {f.step for f in out.values() if isinstance(f, Failure)} == {"to_frame"}


class FakeClient:
    ids = [0, 2]

    def __getitem__(self, engine: int):
        raise IndexError(f"No such engine: {engine}")


def test_an_engine_no_longer_registered_is_gone_without_a_call() -> None:
    pending = Engines(FakeClient()).submit([1, 2], print, step="load")
    assert pending.results[1] == Failure(1, "load", "stopped: no longer registered", gone=True)
    assert pending.results[2].error.startswith("unreachable") and pending.results[2].gone
