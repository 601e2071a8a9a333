"""C text that bpfnb prepends to every ``%%bpf`` cell before the user's code.

Whatever is defined here is available in every cell. The compile step follows it with a
``#line 1`` directive, so diagnostics keep the cell's own line numbers.
"""

from __future__ import annotations

__all__ = ["PREAMBLE", "PREAMBLE_MAPS"]

PREAMBLE = ""

# Maps the preamble declares: bpfnb uses them itself and hides them from ``obj.maps``.
PREAMBLE_MAPS: frozenset[str] = frozenset()
