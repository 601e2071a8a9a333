"""bpftrace programs run from Python or a ``%%bpftrace`` cell, their maps as DataFrames.

bpfnb runs the ``bpftrace`` executable (``-f json``), prints the program's output, and reads its
maps while it runs::

    prog = bpfnb.bpftrace.start('tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }')
    prog.maps["@"].to_frame()      # the counts now
    prog.close()                   # bpftrace stops; prog.maps keep its last print
"""

from bpfnb.bpftrace.process import BpftraceProcess, find_bpftrace
from bpfnb.bpftrace.program import (
    REFRESH_MODES,
    BpftraceMap,
    BpftraceProbe,
    BpftraceProgram,
    run,
    start,
)

__all__ = [
    "REFRESH_MODES",
    "BpftraceMap",
    "BpftraceProbe",
    "BpftraceProcess",
    "BpftraceProgram",
    "find_bpftrace",
    "run",
    "start",
]
