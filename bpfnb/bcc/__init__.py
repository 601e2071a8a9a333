"""The libbcc door: compile BPF C with bcc and load it into a :class:`bpfnb.BpfObject`.

Only this package needs libbcc; it finds the distribution's bindings itself
(:func:`import_bcc`). It compiles and loads, and hands back program fds, map fds and their
Layouts; attaching is :mod:`bpfnb.link`'s job.
"""

from bpfnb.bcc.bindings import find_bcc_dir, import_bcc
from bpfnb.bcc.compiler import compile
from bpfnb.bcc.tables import from_bcc, from_bcc_table

__all__ = ["compile", "find_bcc_dir", "from_bcc", "from_bcc_table", "import_bcc"]
