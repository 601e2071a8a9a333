"""USDT (SystemTap SDT) probes: read a binary's notes, parse their arguments into libbpf's
argument specs, list probes, and attach uprobe programs at every site of a probe.

Serves both doors: a ``%%bpf`` (bcc) program or an ELF object's program attaches the same way,
by its fd::

    bpfnb.usdt.probes("/usr/bin/python3.11")          # a DataFrame of probe sites
    links = bpfnb.usdt.attach_usdt(prog_fd, path, "python", "function__entry")
"""

from bpfnb.usdt.args import ArgType, UsdtArg, pack_spec, parse_arg, parse_args
from bpfnb.usdt.attach import attach_usdt, find_sites
from bpfnb.usdt.listing import mapped_files, probes, process_probes, read_probes
from bpfnb.usdt.notes import UsdtNote, read_notes

__all__ = [
    "ArgType",
    "UsdtArg",
    "UsdtNote",
    "attach_usdt",
    "find_sites",
    "mapped_files",
    "pack_spec",
    "parse_arg",
    "parse_args",
    "probes",
    "process_probes",
    "read_notes",
    "read_probes",
]
