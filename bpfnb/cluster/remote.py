"""Calls from the notebook to a cluster's engines, through ipyparallel, each engine on its own.

One call is sent to each engine (``client[engine].apply_async``) so that each answers, fails
or dies alone: an engine's answer is its value, or a :class:`Failure` saying why there is none.
Waiting is either blocking (a cell's own call, interruptible) or awaited on the asyncio loop
(ipyparallel's results are ``concurrent.futures`` futures), for live views.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from bpfnb.cluster.engine import Failure
from bpfnb.errors import BpfError

__all__ = ["Engines", "Pending", "connect"]

_default_client: Any = None


def _ipyparallel() -> Any:
    try:
        import ipyparallel  # deferred: an optional dependency, needed only for --cluster
    except ImportError:
        raise BpfError(
            "running on a cluster needs ipyparallel: pip install 'bpfnb[cluster]'"
        ) from None
    return ipyparallel


def connect(target: Any = None) -> tuple[Any, list[int]]:
    """The ipyparallel client and engine ids to run on.

    ``target`` is an ``ipyparallel.Client`` (all its engines), a view of one (``rc[:2]``: its
    engines), an ``ipyparallel.Cluster`` (connected to), or None: the cluster of the default
    profile, as ``ipcluster start`` makes it.
    """
    global _default_client
    ipp = _ipyparallel()
    if target is None:
        if _default_client is None or _default_client._closed:
            try:
                _default_client = ipp.Client()
            except OSError as err:
                raise BpfError(
                    f"no running ipyparallel cluster found ({err}); start one with "
                    "'ipcluster start -n 4' or ipyparallel.Cluster(n=4).start_cluster_sync(), or "
                    "name a Client, view or Cluster with --engines"
                ) from None
        target = _default_client
    if isinstance(target, ipp.Cluster):
        target = target.connect_client_sync()
    if isinstance(target, ipp.Client):
        client, ids = target, list(target.ids)
    elif hasattr(target, "client") and hasattr(target, "targets"):  # a view
        client, ids = target.client, _view_targets(target)
    else:
        raise BpfError(
            f"--engines takes an ipyparallel Client, view or Cluster, not {type(target).__name__}"
        )
    if not ids:
        raise BpfError(
            "the cluster has no engines yet: start some (ipcluster engines -n 4), or wait for "
            "them with client.wait_for_engines(n)"
        )
    return client, ids


def _view_targets(view: Any) -> list[int]:
    targets = view.targets
    if targets is None or targets == "all":
        return list(view.client.ids)
    if isinstance(targets, int):
        return [targets]
    return list(targets)


@dataclass
class Pending:
    """One call sent to several engines: each engine's ipyparallel result, or its Failure."""

    step: str
    results: dict[int, Any]


class Engines:
    """Calls to the engines of one client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def submit(
        self,
        ids: Iterable[int],
        func: Callable[..., Any],
        *args: Any,
        per_engine: bool = False,
        step: str = "",
    ) -> Pending:
        """Send ``func(*args)`` (with ``per_engine``, ``func(*args, engine_id)``) to each engine;
        an engine that is gone gets a :class:`Failure` instead of a pending result. ``step``
        names the call in failures (default: the function's name)."""
        step = step or func.__name__
        # A partial pickles its function by name: each engine runs its own installed bpfnb,
        # not code sent from here.
        call = functools.partial(func)
        pending: dict[int, Any] = {}
        for engine in ids:
            if engine not in self.client.ids:
                pending[engine] = Failure(engine, step, "stopped: no longer registered", gone=True)
                continue
            extra = (engine,) if per_engine else ()
            try:
                pending[engine] = self.client[engine].apply_async(call, *args, *extra)
            except (IndexError, OSError) as err:  # unregistered meanwhile, or the client closed
                pending[engine] = Failure(engine, step, f"unreachable: {err}", gone=True)
        return Pending(step, pending)

    def wait(self, pending: Pending, timeout: float | None) -> dict[int, Any]:
        """Each engine's answer (or Failure), waiting at most ``timeout`` seconds in all."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for result in pending.results.values():
            if not isinstance(result, Failure):
                left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                result.wait(left)
        return self._outcomes(pending, timeout)

    async def wait_async(self, pending: Pending, timeout: float | None) -> dict[int, Any]:
        """:meth:`wait`, awaited on the running loop."""
        futures = [
            asyncio.wrap_future(result)
            for result in pending.results.values()
            if not isinstance(result, Failure)
        ]
        if futures:
            await asyncio.wait(futures, timeout=timeout)
        return self._outcomes(pending, timeout)

    def call(
        self,
        ids: Iterable[int],
        func: Callable[..., Any],
        *args: Any,
        timeout: float | None,
        step: str = "",
    ) -> dict[int, Any]:
        """:meth:`submit`, then :meth:`wait`."""
        return self.wait(self.submit(ids, func, *args, step=step), timeout)

    def interrupt(self, pending: Pending) -> None:
        """Interrupt the engines still running this call (SIGINT through ipyparallel), and wait
        until it is delivered, so that what is sent next is not interrupted too."""
        busy = [
            engine
            for engine, result in pending.results.items()
            if not isinstance(result, Failure) and not result.ready()
        ]
        if busy:
            with contextlib.suppress(Exception):  # an engine gone meanwhile: nothing to stop
                self.client.send_signal(signal.SIGINT, targets=busy, block=True)

    def _outcomes(self, pending: Pending, timeout: float | None) -> dict[int, Any]:
        return {
            engine: _outcome(engine, pending.step, result, timeout)
            for engine, result in pending.results.items()
        }


def _outcome(engine: int, step: str, result: Any, timeout: float | None) -> Any:
    # An engine's value, or a Failure that says why there is none.
    if isinstance(result, Failure):
        return result
    if not result.ready():
        return Failure(engine, step, f"no answer within {timeout or 0:g} s", gone=True)
    try:
        value = result.get(0)
    except Exception as err:  # noqa: BLE001 - each engine's failure is reported, not raised
        name = getattr(err, "ename", type(err).__name__)
        died = name == "EngineError"
        text = "died" if died else f"{name}: {getattr(err, 'evalue', err)}"
        return Failure(engine, step, text, gone=died)
    if isinstance(value, Failure):
        return replace(value, engine=engine)
    return value
