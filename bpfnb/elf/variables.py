"""Global variables of an object's data sections: where each lives, and how a value is stored
into it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Variable", "encode_value"]


@dataclass(frozen=True)
class Variable:
    """A global variable: where it lives in a data map, and its BTF type (0 when unknown)."""

    name: str
    map: str
    offset: int
    size: int
    type_id: int = 0
    signed: bool = False
    integer: bool = True


def encode_value(var: Variable, value: object, data: bytes, byteorder: str) -> bytes:
    """``data`` with ``var`` set to ``value`` (an int, or bytes of the variable's size)."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        if not var.integer or var.size not in (1, 2, 4, 8):
            raise TypeError(f"{var.name} is not an integer; give bytes of size {var.size}")
        low = -(1 << (8 * var.size - 1)) if var.signed else 0
        high = (1 << (8 * var.size - (1 if var.signed else 0))) - 1
        if not low <= value <= high:
            raise ValueError(f"{var.name}: {value} does not fit in {var.size} bytes")
        raw = value.to_bytes(var.size, byteorder, signed=var.signed)  # type: ignore[arg-type]
    elif isinstance(value, (bytes, bytearray)):
        if len(value) > var.size:
            raise ValueError(f"{var.name}: {len(value)} bytes do not fit in {var.size}")
        raw = bytes(value).ljust(var.size, b"\0")
    elif isinstance(value, str):
        return encode_value(var, value.encode(), data, byteorder)
    else:
        raise TypeError(f"{var.name}: cannot store a {type(value).__name__}")
    return data[: var.offset] + raw + data[var.offset + var.size :]
