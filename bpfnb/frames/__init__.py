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
from bpfnb.frames.units import UNITS, bucket_label, format_value, unit_of

__all__ = [
    "UNITS",
    "Bitfield",
    "Layout",
    "as_layout",
    "bucket_label",
    "columns",
    "ctype_c_name",
    "dtype_c_name",
    "format_value",
    "frame",
    "layout_of",
    "percpu_columns",
    "unit_of",
]
