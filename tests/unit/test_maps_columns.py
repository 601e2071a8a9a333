"""Per-CPU columns, histogram buckets and text, CPU lists and C type names, without a kernel."""

from __future__ import annotations

import ctypes as ct

import numpy as np
import pandas as pd

from bpfnb.frames import columns, layout_of, percpu_columns
from bpfnb.maps.histogram import bounds, format_histogram
from bpfnb.sys.cpus import parse_cpu_list


class Val(ct.Structure):
    _fields_ = [("count", ct.c_uint32), ("name", ct.c_char * 4), ("hist", ct.c_uint16 * 2)]


def test_cpu_lists() -> None:
    assert parse_cpu_list("0-1\n") == (0, 1)
    assert parse_cpu_list("0,2-4,7") == (0, 2, 3, 4, 7)
    assert parse_cpu_list("0") == (0,)


def test_c_type_names() -> None:
    assert layout_of(ct.c_uint32).type_name == "u32"
    assert layout_of(ct.c_int).type_name == "int"
    assert layout_of(ct.c_int64).type_name == "s64"
    assert layout_of(ct.c_char * 16).type_name == "char[16]"
    assert layout_of(ct.c_uint64 * 127).type_name == "u64[127]"
    assert layout_of(Val).type_name == "struct Val"


def test_percpu_scalar_sums_and_one_column_per_cpu() -> None:
    layout = layout_of(ct.c_uint32)
    values = np.array([[1, 2], [0xFFFFFFFF, 1]], dtype=np.uint32)
    cols = percpu_columns(values, layout, (0, 3), "value")
    assert list(cols) == ["value", "value.cpu0", "value.cpu3"]
    # The total is 64-bit: two u32 counters near the top do not wrap.
    assert cols["value"].tolist() == [3, 0x100000000]
    assert cols["value.cpu3"].tolist() == [2, 1]
    assert list(percpu_columns(values, layout, (0, 3), "value", per_cpu=False)) == ["value"]


def test_percpu_struct_sums_numbers_and_arrays_keeps_first_string() -> None:
    layout = layout_of(Val)
    values = np.zeros((1, 2), dtype=layout.dtype)
    values["count"] = [[5, 7]]
    values["name"] = [[b"a", b"b"]]
    values["hist"] = [[[1, 2], [10, 20]]]
    cols = percpu_columns(values, layout, (0, 1))
    assert cols["count"].tolist() == [12] and cols["count.cpu1"].tolist() == [7]
    assert cols["name"].tolist() == ["a"] and "name.cpu0" not in cols
    assert cols["hist"][0].tolist() == [11, 22]


def test_strings_cut_at_first_nul_and_decode_utf8() -> None:
    raw = np.array([b"ab\x00cd", "héllo".encode(), b""], dtype="S8")
    assert columns(raw, layout_of(ct.c_char * 8), "s")["s"].tolist() == ["ab", "héllo", ""]


def test_log2_bounds_match_bpf_log2l() -> None:
    low, high = bounds(np.array([1, 2, 3, 11, 64]), "log2")
    assert low.tolist() == [0, 2, 4, 1024, 1 << 63]
    assert high.tolist() == [1, 3, 7, 2047, 2**64 - 1]
    for value in (0, 1, 2, 5, 1000, 1 << 40):
        slot = max(value.bit_length(), 1)  # bpf_log2l(0) == bpf_log2l(1) == 1
        lo, hi = bounds(np.array([slot]), "log2")
        assert lo[0] <= value <= hi[0]


def test_log2_text_like_bcc() -> None:
    frame = pd.DataFrame({"slot": [1, 2, 3], "count": [4, 0, 2]})
    text = format_histogram(frame, "log2", "usecs")
    assert text.splitlines() == [
        "     usecs               : count     distribution",
        "         0 -> 1          : 4        |****************************************|",
        "         2 -> 3          : 0        |                                        |",
        "         4 -> 7          : 2        |********************                    |",
    ]
    stripped = format_histogram(
        pd.DataFrame({"slot": [1, 2], "count": [0, 1]}), "log2", strip_leading_zero=True
    )
    assert stripped.splitlines()[1:] == [
        "         2 -> 3          : 1        |****************************************|"
    ]


def test_sectioned_text_has_a_header_per_bucket() -> None:
    frame = pd.DataFrame({"disk": ["sda", "sda", "sdb"], "slot": [0, 1, 3], "count": [1, 2, 3]})
    text = format_histogram(frame, "linear", "ms", section_header="disk")
    assert text.startswith("\ndisk = 'sda'\n     ms            : count     distribution")
    assert "\ndisk = 'sdb'\n" in text
    assert "        3          : 3        |****************************************|" in text
