"""Keys and values as ints, tuples, dicts and records, packed and unpacked without a kernel."""

from __future__ import annotations

import ctypes as ct

import numpy as np
import pytest

from bpfnb.errors import MapError
from bpfnb.frames import columns, layout_of
from bpfnb.maps.convert import Codec


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


def test_scalar_from_int_ctypes_numpy_and_bytes() -> None:
    codec = Codec(layout_of(ct.c_uint32), "key")
    expected = np.array([7], np.uint32).tobytes()
    for given in (7, ct.c_uint32(7), np.uint32(7), np.array([7], np.uint32), expected):
        assert codec.pack(given).tobytes() == expected
    assert codec.unpack(codec.pack(7)) == [7]


def test_struct_from_tuple_dict_dotted_and_ctypes_agree() -> None:
    codec = Codec(layout_of(Key))
    from_tuple = codec.pack((7, "bash", (80, 443), [1, 2, 3], 5, 17))
    from_dict = codec.pack(
        {
            "pid": 7,
            "comm": b"bash",
            "addr": {"sport": 80, "dport": 443},
            "samples": [1, 2, 3],
            "flag": 5,
            "level": 17,
        }
    )
    from_dotted = codec.pack(
        {
            "pid": 7,
            "comm": "bash",
            "addr.sport": 80,
            "addr.dport": 443,
            "samples": (1, 2, 3),
            "flag": 5,
            "level": 17,
        }
    )
    raw = Key(7, b"bash", Addr(80, 443), (ct.c_uint32 * 3)(1, 2, 3))
    raw.flag, raw.level = 5, 17
    assert from_tuple.tobytes() == from_dict.tobytes() == from_dotted.tobytes() == bytes(raw)
    assert codec.pack(raw).tobytes() == bytes(raw)


def test_struct_reads_back_as_hashable_namedtuples() -> None:
    codec = Codec(layout_of(Key))
    (value,) = codec.unpack(codec.pack((7, "bash", (80, 443), [1, 2, 3], 5, 17)))
    assert value == (7, "bash", (80, 443), (1, 2, 3), 5, 17)
    assert value.comm == "bash" and value.addr.dport == 443 and value.level == 17
    assert {value: 1}[value] == 1
    # What comes out goes back in unchanged.
    assert (
        codec.pack(value).tobytes()
        == codec.pack((7, "bash", (80, 443), [1, 2, 3], 5, 17)).tobytes()
    )


def test_missing_dict_fields_are_zero() -> None:
    (value,) = Codec(layout_of(Key)).unpack(Codec(layout_of(Key)).pack({"pid": 3}))
    assert value.pid == 3 and value.comm == "" and value.addr == (0, 0)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ((1, 2), "6 fields"),
        ({"nope": 1}, "no field 'nope'"),
        ((1, "x" * 17, (0, 0), [0, 0, 0], 0, 0), "at most 16 bytes"),
        ((-1, "", (0, 0), [0, 0, 0], 0, 0), "does not fit"),
        ((0, "", (0, 0), [0, 0, 0], 8, 0), "3-bit field"),
        ((0, "", (0, 0), [0, 0], 0, 0), "shape"),
        ("text", "tuple or dict"),
        (b"\x00" * 3, "got 3 bytes"),
    ],
)
def test_bad_input_raises_map_error(given: object, message: str) -> None:
    with pytest.raises(MapError, match=message):
        Codec(layout_of(Key)).pack(given)


def test_wrong_sized_record_raises_map_error() -> None:
    with pytest.raises(MapError, match="4 bytes"):
        Codec(layout_of(ct.c_uint32)).pack(b"\x00" * 8)
    with pytest.raises(MapError, match="needs an int"):
        Codec(layout_of(ct.c_uint64)).pack("12")


def test_char_array_scalar_and_plain_arrays() -> None:
    text = Codec(layout_of(ct.c_char * 8))
    assert text.unpack(text.pack("héllo")) == ["héllo"]
    ips = Codec(layout_of(ct.c_uint64 * 4))
    assert ips.unpack(ips.pack([1, 2, 3, 0])) == [(1, 2, 3, 0)]


class Padded(ct.Structure):  # as bcc declares struct {u32 whence; u64 slot;}
    _fields_ = [("whence", ct.c_uint32), ("__pad_1", ct.c_char * 4), ("slot", ct.c_uint64)]


class Either(ct.Union):
    _fields_ = [("as_u32", ct.c_uint32), ("as_bytes", ct.c_uint8 * 4)]


def test_bcc_padding_is_neither_a_field_nor_a_column() -> None:
    codec = Codec(layout_of(Padded))
    packed = codec.pack((3, 9))
    assert packed.tobytes() == bytes(Padded(3, b"", 9))
    assert codec.unpack(packed)[0]._asdict() == {"whence": 3, "slot": 9}
    assert list(columns(packed, layout_of(Padded))) == ["whence", "slot"]


def test_union_members_read_the_same_bytes() -> None:
    codec = Codec(layout_of(Either))
    (value,) = codec.unpack(codec.pack({"as_u32": 0x04030201}))
    assert value.as_u32 == 0x04030201 and value.as_bytes == (1, 2, 3, 4)


class _Addr(ct.Union):
    _fields_ = [("v4", ct.c_uint32), ("v6", ct.c_uint8 * 16)]


class _Flags(ct.Structure):
    _fields_ = [("syn", ct.c_uint8, 1), ("ack", ct.c_uint8, 1)]


class Flow(ct.Structure):  # as bcc declares struct {u16 port; union {u32 v4; u8 v6[16];}; ...}
    _anonymous_ = ("__anon0", "__anon1")
    _fields_ = [("port", ct.c_uint16), ("__anon0", _Addr), ("__anon1", _Flags)]


def test_anonymous_members_read_as_the_parents_fields() -> None:
    layout = layout_of(Flow)
    codec = Codec(layout)
    packed = codec.pack({"port": 80, "v4": 0x0100007F, "ack": 1})
    raw = Flow(port=80)
    raw.v4, raw.ack = 0x0100007F, 1
    assert packed.tobytes() == bytes(raw)
    assert list(columns(packed, layout)) == ["port", "v4", "v6", "syn", "ack"]
    (value,) = codec.unpack(packed)
    assert value._fields == ("port", "v4", "v6", "syn", "ack")
    assert (value.port, value.v4, value.v6[:4], value.syn, value.ack) == (
        80,
        0x0100007F,
        (127, 0, 0, 1),
        0,
        1,
    )
    assert codec.pack(value).tobytes() == packed.tobytes()


def test_packed_struct_keeps_padding_bytes_exactly() -> None:
    # The kernel compares every byte of a key, padding included: garbage there misses lookups.
    codec = Codec(layout_of(Key))
    raw = Key(7, b"bash", Addr(80, 443), (ct.c_uint32 * 3)(1, 2, 3))
    for _ in range(200):  # numpy's copy of a structured array left padding uninitialised
        garbage = np.full(1000, 0xFF, np.uint8)  # make recycled memory non-zero
        del garbage
        assert codec.pack(raw).tobytes() == bytes(raw)
        assert codec.pack(np.frombuffer(bytes(raw), codec.dtype)).tobytes() == bytes(raw)
