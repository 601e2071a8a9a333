"""BTF types → :class:`bpfnb.frames.Layout`, with the same rules as ``frames.layout_of`` for
ctypes: char arrays become strings, structs keep their field names (anonymous members are
flattened into their parent, as C reads them), bitfields decode from their storage integer."""

from __future__ import annotations

import numpy as np

from bpfnb.elf.btf import INT_BOOL, INT_CHAR, INT_SIGNED, Btf, BtfType
from bpfnb.elf.variables import Variable
from bpfnb.errors import ElfError
from bpfnb.frames import Bitfield, Layout

__all__ = ["data_layout", "layout_for", "layout_of_type", "raw_layout"]

# Map values beyond this are not laid out from BTF (the kernel refuses such maps anyway).
_MAX_SIZE = 1 << 24
_MAX_DEPTH = 32


def raw_layout(size: int, section: str = "", offset: int = 0) -> Layout:
    """A type known only by its size: an unsigned integer when it has an integer's size."""
    if size > _MAX_SIZE:
        raise ElfError(
            f"a key or value of {size} bytes is too large to lay out", section or None, offset
        )
    if size in (1, 2, 4, 8):
        return Layout(np.dtype(f"u{size}"), c_name=f"u{size * 8}")
    if size <= 0:
        return Layout(np.dtype([]), c_name="void")
    return Layout(np.dtype([("raw", np.uint8, (size,))]), c_name=f"u8[{size}]")


def layout_for(
    btf: Btf | None, type_id: int, size: int, section: str = "", offset: int = 0
) -> Layout:
    """The layout of BTF type ``type_id``; by ``size`` alone when there is no BTF type."""
    if btf is None or not type_id:
        return raw_layout(size, section, offset)
    layout = layout_of_type(btf, type_id)
    if layout.size != size:
        raise ElfError(
            f"BTF type {btf.type_name(type_id)} is {layout.size} bytes, the map says {size}",
            btf.section,
            btf.offset_of(type_id),
        )
    return layout


def data_layout(btf: Btf | None, section: str, variables: list[Variable], size: int) -> Layout:
    """A global-data map's value: one field per variable, named as in C."""
    names: list[str] = []
    formats: list[np.dtype] = []
    offsets: list[int] = []
    bitfields: list[Bitfield] = []
    end = 0
    for var in sorted(variables, key=lambda v: v.offset):
        if var.offset < end or var.size == 0 or var.offset + var.size > size or var.name in names:
            continue  # overlapping or empty: leave those bytes out
        fallback = raw_layout(var.size, section)
        if btf is not None and var.type_id:
            layout = layout_of_type(btf, var.type_id)
            if layout.size != var.size:
                layout = fallback
        else:
            layout = fallback
        names.append(var.name)
        formats.append(layout.dtype)
        offsets.append(var.offset)
        bitfields += [
            Bitfield(f"{var.name}.{b.name}", f"{var.name}.{b.storage}", b.shift, b.width)
            for b in layout.bitfields
        ]
        end = var.offset + var.size
    try:
        dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": size})
    except (ValueError, TypeError) as err:
        raise ElfError(f"global data has no numpy layout: {err}", section, 0) from None
    return Layout(dtype, tuple(bitfields), c_name=section)


def layout_of_type(btf: Btf, type_id: int) -> Layout:
    """The :class:`Layout` of BTF type ``type_id`` (a scalar, array, struct or union)."""
    bitfields: list[Bitfield] = []
    try:
        dtype = _dtype(btf, type_id, "", bitfields, 0)
    except (ValueError, TypeError, OverflowError, MemoryError) as err:
        raise ElfError(
            f"type {type_id} has no numpy layout: {err}", btf.section, btf.offset_of(type_id)
        ) from None
    return Layout(dtype, tuple(bitfields), c_name=btf.type_name(type_id))


def _scalar(t: BtfType) -> np.dtype:
    if t.kind == "INT":
        if t.encoding & INT_BOOL and t.size == 1:
            return np.dtype(np.bool_)
        if t.size not in (1, 2, 4, 8, 16):
            raise ValueError(f"integer of {t.size} bytes")
        if t.size == 16:
            return np.dtype([("lo", "u8"), ("hi", "u8")])
        return np.dtype(f"{'i' if t.encoding & INT_SIGNED else 'u'}{t.size}")
    if t.kind in ("ENUM", "ENUM64"):
        if t.size not in (1, 2, 4, 8):
            raise ValueError(f"enum of {t.size} bytes")
        return np.dtype(f"{'i' if t.kind_flag else 'u'}{t.size}")
    if t.kind == "FLOAT":
        if t.size not in (2, 4, 8):
            raise ValueError(f"float of {t.size} bytes")
        return np.dtype(f"f{t.size}")
    if t.kind == "PTR":
        return np.dtype(np.uint64)
    raise ValueError(f"{t.kind} {t.name!r} has no value layout")


def _is_char(btf: Btf, type_id: int) -> bool:
    t = btf.skip_modifiers(type_id)
    return t.kind == "INT" and t.size == 1 and bool(t.encoding & INT_CHAR or t.name == "char")


def _dtype(btf: Btf, type_id: int, path: str, bitfields: list[Bitfield], depth: int) -> np.dtype:
    if depth > _MAX_DEPTH:
        raise ValueError("types nest too deeply")
    t = btf.skip_modifiers(type_id)
    if t.kind == "ARRAY":
        if _is_char(btf, t.type_id):
            if t.nelems > _MAX_SIZE:
                raise ValueError(f"char[{t.nelems}] is too large")
            return np.dtype(f"S{t.nelems}") if t.nelems else np.dtype([])
        element = _dtype(btf, t.type_id, path, bitfields, depth + 1)
        if t.nelems * max(element.itemsize, 1) > _MAX_SIZE:
            raise ValueError(f"array of {t.nelems} elements is too large")
        if t.nelems == 0:
            return np.dtype([])
        return np.dtype((element, (t.nelems,)))
    if t.kind in ("STRUCT", "UNION"):
        if t.size > _MAX_SIZE:
            raise ValueError(f"{btf.type_name(t.id)} of {t.size} bytes is too large")
        names: list[str] = []
        formats: list[np.dtype] = []
        offsets: list[int] = []
        _add_members(btf, t, 0, path, names, formats, offsets, bitfields, depth)
        return np.dtype(
            {"names": names, "formats": formats, "offsets": offsets, "itemsize": t.size}
        )
    return _scalar(t)


def _add_members(
    btf: Btf,
    t: BtfType,
    base: int,
    path: str,
    names: list[str],
    formats: list[np.dtype],
    offsets: list[int],
    bitfields: list[Bitfield],
    depth: int,
) -> None:
    for member in t.members:
        bit_offset = base * 8 + member.offset
        target = btf.skip_modifiers(member.type_id)
        if not member.name and target.kind in ("STRUCT", "UNION"):
            # An anonymous struct/union: its fields belong to the parent, as in C.
            if member.offset % 8:
                raise ValueError("anonymous member not byte-aligned")
            inner = base + member.offset // 8
            _add_members(btf, target, inner, path, names, formats, offsets, bitfields, depth + 1)
            continue
        name = member.name or f"_unnamed{len(names)}"
        dotted = f"{path}.{name}" if path else name
        width = member.bitfield_size
        if (
            not width
            and target.kind == "INT"
            and (target.bits != target.size * 8 or bit_offset % 8)
        ):
            width = target.bits  # a bitfield in a struct without kind_flag
        if width:
            _add_bitfield(
                target, bit_offset, width, dotted, path, names, formats, offsets, bitfields
            )
            continue
        if bit_offset % 8:
            raise ValueError(f"member {dotted!r} is not byte-aligned")
        if name in names:
            name = f"{name}_{len(names)}"
        names.append(name)
        formats.append(_dtype(btf, member.type_id, dotted, bitfields, depth + 1))
        offsets.append(bit_offset // 8)


def _add_bitfield(
    target: BtfType,
    bit_offset: int,
    width: int,
    dotted: str,
    path: str,
    names: list[str],
    formats: list[np.dtype],
    offsets: list[int],
    bitfields: list[Bitfield],
) -> None:
    unit = target.size if target.size in (1, 2, 4, 8) else 4
    storage_offset = (bit_offset // (unit * 8)) * unit
    shift = bit_offset - storage_offset * 8
    if shift + width > unit * 8:  # straddles its unit: read a wider word
        unit = 8
        storage_offset = (bit_offset // 8) & ~7
        shift = bit_offset - storage_offset * 8
        if shift + width > 64:
            raise ValueError(f"bitfield {dotted!r} is too wide")
    storage = f"_bits{storage_offset}_{unit}"
    if storage not in names:
        names.append(storage)
        formats.append(np.dtype(f"u{unit}"))
        offsets.append(storage_offset)
    storage_path = f"{path}.{storage}" if path else storage
    bitfields.append(Bitfield(dotted, storage_path, shift, width))
