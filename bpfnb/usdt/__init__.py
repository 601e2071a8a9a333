"""USDT (SystemTap SDT) probes: read a binary's ``.note.stapsdt`` probe sites, parse their
arguments into libbpf's argument specs, and list the probes of a binary or a process::

    bpfnb.usdt.probes("/usr/bin/python3.11")          # a DataFrame of probe sites
"""

from bpfnb.usdt.args import ArgType, UsdtArg, pack_spec, parse_arg, parse_args
from bpfnb.usdt.listing import mapped_files, probes, read_probes
from bpfnb.usdt.notes import UsdtNote, read_notes

__all__ = [
    "ArgType",
    "UsdtArg",
    "UsdtNote",
    "mapped_files",
    "pack_spec",
    "parse_arg",
    "parse_args",
    "probes",
    "read_notes",
    "read_probes",
]
