"""The kernel ABI: ``bpf()``, ``perf_event_open()``, tracefs. Imports nothing else of bpfnb
but :mod:`bpfnb.errors`, a leaf module."""

from bpfnb.sys import bpf, caps, perf, tracefs
from bpfnb.sys.constants import AttachType, Cmd, MapType, ProgType
from bpfnb.sys.fd import FD

__all__ = ["FD", "AttachType", "Cmd", "MapType", "ProgType", "bpf", "caps", "perf", "tracefs"]
