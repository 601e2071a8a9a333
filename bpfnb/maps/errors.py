"""The typed error of map operations, part of the :class:`bpfnb.errors.BpfError` hierarchy."""

from __future__ import annotations

from bpfnb.errors import BpfError

__all__ = ["MapError"]


class MapError(BpfError, ValueError):
    """A key or value that does not fit the map's type, or an operation the map cannot do."""
