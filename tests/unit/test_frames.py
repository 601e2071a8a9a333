from __future__ import annotations

import ctypes as ct

import numpy as np

from bpfnb.frames import frame, layout_of


class Addr(ct.Structure):
    _fields_ = [("sport", ct.c_uint16), ("dport", ct.c_uint16)]


class Key(ct.Structure):
    _fields_ = [
        ("pid", ct.c_uint32),
        ("comm", ct.c_char * 16),
        ("addr", Addr),
        ("samples", ct.c_uint32 * 3),
        ("flag", ct.c_uint8, 3),
        ("level", ct.c_uint8, 5),
    ]


def test_struct_fields_become_named_columns() -> None:
    records = (Key * 2)()
    records[0].pid, records[0].comm, records[0].addr.sport = 7, b"bash", 443
    records[0].flag, records[0].level = 5, 17
    records[1].comm = b"python3"
    layout = layout_of(Key)
    assert layout.size == ct.sizeof(Key)
    df = frame(np.frombuffer(bytes(records), dtype=layout.dtype), layout)
    assert list(df.columns) == [
        "pid",
        "comm",
        "addr.sport",
        "addr.dport",
        "samples",
        "flag",
        "level",
    ]
    assert df["comm"].tolist() == ["bash", "python3"]
    assert df.loc[0, "addr.sport"] == 443
    assert (df.loc[0, "flag"], df.loc[0, "level"]) == (5, 17)
    assert df.loc[0, "samples"].tolist() == [0, 0, 0]


def test_string_stops_at_first_nul_even_with_garbage_after() -> None:
    raw = np.frombuffer(b"ab\x00cd" + b"\x00" * 11, dtype="S16")
    df = frame(raw, layout_of(ct.c_char * 16), "comm")
    assert df["comm"].tolist() == ["ab"]


def test_scalar_gets_prefix_name() -> None:
    df = frame(np.arange(3, dtype=np.uint64), layout_of(ct.c_uint64), "value")
    assert df["value"].tolist() == [0, 1, 2]
