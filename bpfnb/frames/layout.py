"""Turn a C type (given as ctypes) into a numpy structured dtype, once.

Rules, the same for map keys/values and event records:
- integers, floats and pointers keep their width and signedness;
- ``char[N]`` becomes a fixed-width byte string (``S{N}``), shown as ``str`` in frames;
- other arrays become numpy subarrays;
- nested structs stay nested; frames flatten them into dotted names;
- union members each become a field at the union's offset, all reading the same bytes;
- bitfields are stored as their containing integer and decoded into one column each by shift
  and mask (:class:`Bitfield`).
"""

from __future__ import annotations

import ctypes as ct
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Bitfield", "Layout", "layout_of"]


@dataclass(frozen=True)
class Bitfield:
    """A bitfield decoded from the integer field ``storage`` (a dotted path)."""

    name: str
    storage: str
    shift: int
    width: int


@dataclass(frozen=True)
class Layout:
    """A C type as numpy sees it: the dtype and the bitfields to decode from it."""

    dtype: np.dtype
    bitfields: tuple[Bitfield, ...] = ()

    @property
    def size(self) -> int:
        return self.dtype.itemsize


_CHAR_TYPES = (ct.c_char, ct.c_byte, ct.c_ubyte)


def _bitfield_geometry(descriptor: Any) -> tuple[int, int]:
    # Python 3.13 names them; before, ctypes packs (width << 16) | shift into .size.
    if hasattr(descriptor, "bit_size"):
        return descriptor.bit_offset, descriptor.bit_size
    return descriptor.size & 0xFFFF, descriptor.size >> 16


def _dtype_of(ctype: Any, path: str, bitfields: list[Bitfield]) -> np.dtype:
    if issubclass(ctype, ct.Array):
        if ctype._type_ is ct.c_char:
            return np.dtype(f"S{ctype._length_}")
        return np.dtype((_dtype_of(ctype._type_, path, bitfields), (ctype._length_,)))
    if issubclass(ctype, (ct.Structure, ct.Union)):
        names: list[str] = []
        formats: list[Any] = []
        offsets: list[int] = []
        for field in ctype._fields_:
            name, ftype = field[0], field[1]
            descriptor = getattr(ctype, name)
            dotted = f"{path}.{name}" if path else name
            if len(field) == 3:
                shift, width = _bitfield_geometry(descriptor)
                storage = f"_bits{descriptor.offset}"
                if storage not in names:
                    names.append(storage)
                    formats.append(np.dtype(ftype))
                    offsets.append(descriptor.offset)
                storage_path = f"{path}.{storage}" if path else storage
                bitfields.append(Bitfield(dotted, storage_path, shift, width))
                continue
            names.append(name)
            formats.append(_dtype_of(ftype, dotted, bitfields))
            offsets.append(descriptor.offset)
        return np.dtype(
            {"names": names, "formats": formats, "offsets": offsets, "itemsize": ct.sizeof(ctype)}
        )
    if ctype in _CHAR_TYPES or issubclass(ctype, ct._SimpleCData):
        return np.dtype(ctype)
    if issubclass(ctype, ct._Pointer):
        return np.dtype(np.uint64)
    raise TypeError(f"no numpy equivalent for C type {ctype!r}")


def layout_of(ctype: Any) -> Layout:
    """The :class:`Layout` of a ctypes type (scalar, array, struct or union)."""
    bitfields: list[Bitfield] = []
    dtype = _dtype_of(ctype, "", bitfields)
    if dtype.itemsize != ct.sizeof(ctype):
        raise TypeError(f"{ctype!r}: numpy size {dtype.itemsize} != C size {ct.sizeof(ctype)}")
    return Layout(dtype, tuple(bitfields))
