"""C types → numpy dtypes → pandas DataFrames, shared by maps and event streams."""

from bpfnb.frames.layout import Bitfield, Layout, layout_of
from bpfnb.frames.table import columns, frame

__all__ = ["Bitfield", "Layout", "columns", "frame", "layout_of"]
