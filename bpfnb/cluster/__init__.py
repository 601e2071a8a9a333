"""One probe on many hosts: a ``%%bpf`` cell on every engine of an ipyparallel cluster.

:func:`run_cell` sends the cell (a :class:`bpfnb.cells.CellSpec`) to each engine, which loads
it in its own bpfnb session, filling ``{engine}``, ``{pid}`` and ``{host}`` in the ``-D``
values with its own. The :class:`ClusterObject` it returns reads the engines' maps and streams
in parallel and gathers them into one DataFrame with ``host`` and ``engine`` columns.
ipyparallel (``pip install 'bpfnb[cluster]'``) loads only when a cell runs on a cluster.
"""

from bpfnb.cluster.failures import Failures
from bpfnb.cluster.load import run_cell
from bpfnb.cluster.maps import ClusterMap
from bpfnb.cluster.object import ClusterObject, ClusterProgram
from bpfnb.cluster.remote import connect
from bpfnb.cluster.streams import ClusterStream

__all__ = [
    "ClusterMap",
    "ClusterObject",
    "ClusterProgram",
    "ClusterStream",
    "Failures",
    "connect",
    "run_cell",
]
