"""C types → numpy dtypes → pandas DataFrames, shared by maps and event streams."""

from bpfnb.frames.layout import (
    Bitfield,
    Layout,
    as_layout,
    ctype_c_name,
    dtype_c_name,
    layout_of,
)
from bpfnb.frames.percpu import percpu_columns
from bpfnb.frames.table import columns, frame

__all__ = [
    "Bitfield",
    "Layout",
    "as_layout",
    "columns",
    "ctype_c_name",
    "dtype_c_name",
    "frame",
    "layout_of",
    "percpu_columns",
]
