"""USDT (SystemTap SDT) probes: read a binary's ``.note.stapsdt`` probe sites."""

from bpfnb.usdt.notes import UsdtNote, read_notes

__all__ = ["UsdtNote", "read_notes"]
