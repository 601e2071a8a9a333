"""USDT (SystemTap SDT) probes: read a binary's ``.note.stapsdt`` probe sites and parse their
arguments into libbpf's argument specs."""

from bpfnb.usdt.args import ArgType, UsdtArg, pack_spec, parse_arg, parse_args
from bpfnb.usdt.notes import UsdtNote, read_notes

__all__ = ["ArgType", "UsdtArg", "UsdtNote", "pack_spec", "parse_arg", "parse_args", "read_notes"]
