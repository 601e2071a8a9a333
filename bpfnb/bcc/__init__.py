"""The libbcc front end: compile BPF C with bcc and wrap the result as a ``BpfObject``.

Only this package needs libbcc; it finds the distribution's bindings itself
(:func:`import_bcc`).
"""

from bpfnb.bcc.loader import find_bcc_dir, import_bcc
from bpfnb.bcc.program import BccObject, compile

__all__ = ["BccObject", "compile", "find_bcc_dir", "import_bcc"]
