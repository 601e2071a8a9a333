"""bpftrace programs run from Python or a ``%%bpftrace`` cell, their maps as DataFrames."""

__all__: list[str] = []
