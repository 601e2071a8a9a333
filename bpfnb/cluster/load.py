"""``run_cell``: load a cell on every engine of a cluster and make its :class:`ClusterObject`."""

from __future__ import annotations

import uuid
from typing import Any

from bpfnb.cells import CellSpec
from bpfnb.cluster import engine
from bpfnb.cluster.engine import Built, Failure
from bpfnb.cluster.failures import Failures, no_engine_answered
from bpfnb.cluster.object import ClusterObject, close_at_exit
from bpfnb.cluster.remote import Engines, connect
from bpfnb.errors import Interrupted

__all__ = ["LOAD_TIMEOUT", "run_cell"]

#: Seconds a cell waits for its engines to compile and load it.
LOAD_TIMEOUT = 600.0


def run_cell(spec: CellSpec, target: Any = None, *, timeout: float = LOAD_TIMEOUT) -> ClusterObject:
    """Load the cell on every engine of ``target`` (see :func:`bpfnb.cluster.remote.connect`).

    Each engine fills ``{engine}``, ``{pid}`` and ``{host}`` in the cell's ``-D`` values with its
    own. Engines that fail are reported in the object's ``failures``; when none loads it, the
    error is raised. An interrupt stops the engines still compiling and closes the cell on
    every engine.
    """
    client, ids = connect(target)
    engines = Engines(client)
    key = f"{spec.name}-{uuid.uuid4().hex[:12]}"
    pending = engines.submit(ids, engine.build, key, spec, per_engine=True, step="load")
    try:
        outcomes = engines.wait(pending, timeout)
    except KeyboardInterrupt:
        # The engines still compiling stop; each runs its calls in order, so this close runs
        # once its load has ended, whichever way.
        engines.interrupt(pending)
        engines.submit(ids, engine.close, key)
        raise Interrupted(
            f"interrupted while {spec.name} loaded; it is closed on every engine"
        ) from None
    built = {eid: out for eid, out in outcomes.items() if isinstance(out, Built)}
    failed = [out for out in outcomes.values() if isinstance(out, Failure)]
    if not built:
        raise no_engine_answered(spec.name, failed)
    failures = Failures(spec.name)
    for failure in failed:
        failures.add(failure)
    obj = ClusterObject(spec, engines, key, built, failures)
    close_at_exit()
    return obj
