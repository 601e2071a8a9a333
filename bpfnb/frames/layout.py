"""Turn a C type (given as ctypes) into a numpy structured dtype, once.

Rules, the same for map keys/values and event records:
- integers, floats and pointers keep their width and signedness;
- ``char[N]`` becomes a fixed-width byte string (``S{N}``), shown as ``str`` in frames;
- other arrays become numpy subarrays;
- nested structs stay nested; frames flatten them into dotted names;
- union members each become a field at the union's offset, all reading the same bytes;
- bitfields are stored as their containing integer and decoded into one column each by shift
  and mask (:class:`Bitfield`);
- bcc's explicit padding members (``__pad_N``) are kept in the dtype but are not columns;
- bcc's unnamed struct/union members (``__anonN``) stay nested in the dtype, but their fields
  are named as the parent's, as C code names them.
"""

from __future__ import annotations

import ctypes as ct
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Bitfield", "Layout", "as_layout", "ctype_c_name", "dtype_c_name", "layout_of"]


@dataclass(frozen=True)
class Bitfield:
    """A bitfield decoded from the integer field ``storage`` (a dotted path)."""

    name: str
    storage: str
    shift: int
    width: int


@dataclass(frozen=True)
class Layout:
    """A C type as numpy sees it: the dtype, the bitfields to decode from it, and its C name.

    ``c_name`` is what a reader would write in C (``u32``, ``char[16]``, ``struct key_t``);
    when the producer leaves it empty, :attr:`type_name` derives one from the dtype.
    """

    dtype: np.dtype
    bitfields: tuple[Bitfield, ...] = ()
    c_name: str = ""

    @property
    def type_name(self) -> str:
        """A readable C name of the type."""
        return self.c_name or dtype_c_name(self.dtype)

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
    return Layout(dtype, tuple(bitfields), ctype_c_name(ctype))


def _scalar_c_name(dtype: np.dtype) -> str:
    if dtype.kind == "b":
        return "bool"
    if dtype.kind == "f":
        return {4: "float", 8: "double"}.get(dtype.itemsize, f"float{dtype.itemsize * 8}")
    if dtype.kind == "S":
        return f"char[{dtype.itemsize}]"
    if dtype.kind in "iu":
        bits = dtype.itemsize * 8
        # ``int`` is what C code says for s32; the kernel's u/s names read best for the rest.
        if dtype.kind == "i":
            return "int" if bits == 32 else f"s{bits}"
        return f"u{bits}"
    return str(dtype)


def dtype_c_name(dtype: np.dtype) -> str:
    """A C-like name for a numpy dtype (``u64``, ``u32[4]``, ``struct {...}``)."""
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return dtype_c_name(base) + "".join(f"[{n}]" for n in shape)
    if dtype.names:
        return "struct {" + "; ".join(dtype.names) + "}"
    return _scalar_c_name(dtype)


def ctype_c_name(ctype: Any) -> str:
    """A C name for a ctypes type: ``u32``, ``char[16]``, ``struct key_t``, ``union u``."""
    if issubclass(ctype, ct.Array):
        if ctype._type_ is ct.c_char:
            return f"char[{ctype._length_}]"
        return f"{ctype_c_name(ctype._type_)}[{ctype._length_}]"
    if issubclass(ctype, (ct.Structure, ct.Union)):
        kind = "union" if issubclass(ctype, ct.Union) else "struct"
        name = ctype.__name__
        return f"{kind} {name}" if name and not name.startswith("__anon") else f"{kind} {{...}}"
    if ctype is ct.c_char:
        return "char"
    if ctype is ct.c_bool:
        return "bool"
    if issubclass(ctype, ct._Pointer):
        return "void *"
    return _scalar_c_name(np.dtype(ctype))


def as_layout(c_type: Any) -> Layout:
    """The :class:`Layout` of a type given as a Layout, a numpy dtype or a ctypes type."""
    if isinstance(c_type, Layout):
        return c_type
    if isinstance(c_type, type) and issubclass(
        c_type, (ct._SimpleCData, ct.Structure, ct.Union, ct.Array)
    ):
        return layout_of(c_type)
    try:
        return Layout(np.dtype(c_type))
    except TypeError as err:
        raise TypeError(
            f"expected a numpy dtype, a ctypes type or a Layout, not {c_type!r}"
        ) from err
