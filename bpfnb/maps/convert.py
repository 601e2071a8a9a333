"""Python values ↔ map records, for one :class:`~bpfnb.frames.Layout`.

Keys and values may be given as:
- an ``int`` or ``float`` for a scalar type, ``str``/``bytes`` for ``char[N]``, a sequence for
  other arrays;
- a ``tuple`` (or namedtuple) for a struct, in field order: plain fields first, then bitfields,
  the order of :meth:`Map.to_frame`'s columns;
- a ``dict`` for a struct, by field name; nested structs as nested dicts or dotted names
  (``{"addr.sport": 80}``); missing fields are zero;
- raw records: a ctypes object, a numpy record/array of the dtype, or ``bytes`` of its size.

Records read back as Python ints/floats for scalars, ``str`` for ``char[N]``, tuples for other
arrays, and namedtuples (hashable, so usable as dict keys) for structs.
"""

from __future__ import annotations

import ctypes as ct
import keyword
from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpfnb.errors import MapError
from bpfnb.frames import Layout, columns
from bpfnb.frames.table import ANONYMOUS_PREFIX, HIDDEN_PREFIXES

__all__ = ["Codec"]


@dataclass
class _Node:
    """One struct in a layout: its plain fields (name → sub-node or None) and its bitfields.

    ``path`` is the dotted name users see; ``real`` the path in the dtype, which also holds
    bcc's ``__anonN`` members (unnamed structs and unions, whose fields read as the parent's).
    """

    path: str
    real: str
    dtype: np.dtype
    anonymous: bool = False
    fields: list[tuple[str, _Node | None]] = field(default_factory=list)
    bits: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # name → storage, shift, w
    record: Any = None

    @property
    def names(self) -> list[str]:
        out: list[str] = []
        for name, sub in self.fields:
            out += sub.names if sub is not None and sub.anonymous else [name]
        return out + list(self.bits)

    def members(self) -> dict[str, tuple[_Node, list[str]]]:
        """Visible name → (the node that owns it, the anonymous fields to descend through)."""
        out: dict[str, tuple[_Node, list[str]]] = {}
        for name, sub in self.fields:
            if sub is not None and sub.anonymous:
                for inner, (owner, chain) in sub.members().items():
                    out[inner] = (owner, [name, *chain])
            else:
                out[name] = (self, [])
        for name in self.bits:
            out[name] = (self, [])
        return out


def _build(
    dtype: np.dtype, path: str, layout: Layout, real: str = "", anonymous: bool = False
) -> _Node:
    node = _Node(path, real, dtype, anonymous)
    assert dtype.names is not None and dtype.fields is not None
    for name in dtype.names:
        if name.startswith(HIDDEN_PREFIXES):  # padding stays zero; bitfields come below
            continue
        sub = dtype.fields[name][0]
        real_dotted = f"{real}.{name}" if real else name
        if sub.names and name.startswith(ANONYMOUS_PREFIX):
            node.fields.append((name, _build(sub, path, layout, real_dotted, anonymous=True)))
            continue
        dotted = f"{path}.{name}" if path else name
        node.fields.append((name, _build(sub, dotted, layout, real_dotted) if sub.names else None))
    for bits in layout.bitfields:
        parent, _, name = bits.name.rpartition(".")
        if parent == real:
            node.bits[name] = (bits.storage.rpartition(".")[2], bits.shift, bits.width)
    type_name = "".join(p.capitalize() for p in path.split(".")) if path else "Record"
    node.record = namedtuple(_identifier(type_name), node.names, rename=True)  # type: ignore[misc]
    return node


def _identifier(name: str) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name).lstrip("_") or "Record"
    return name + "_" if keyword.iskeyword(name) or name[0].isdigit() else name


def _python(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


class Codec:
    """Packs Python values into one-record arrays of ``layout.dtype`` and unpacks them."""

    def __init__(self, layout: Layout, what: str = "value") -> None:
        self.layout = layout
        self.dtype = layout.dtype
        self.what = what
        self._root = _build(self.dtype, "", layout) if self.dtype.names else None

    # -- Python → record -------------------------------------------------------------------------

    def pack(self, value: Any) -> np.ndarray:
        """A fresh ``(1,)`` array of the dtype holding ``value``."""
        raw = self._raw(value)
        if raw is not None:
            return raw
        out = np.zeros(1, dtype=self.dtype)
        if self._root is None:
            out[0] = self._leaf(value, self.dtype, self.what)
        else:
            self._assign(out, self._root, value)
        return out

    def _raw(self, value: Any) -> np.ndarray | None:
        size = self.dtype.itemsize
        if isinstance(value, ct._SimpleCData) and not isinstance(value, ct.c_char):
            return None if ct.sizeof(value) != size else self._from_bytes(bytes(value))
        if isinstance(value, (ct.Structure, ct.Union, ct.Array)):
            return self._from_bytes(bytes(value))
        if isinstance(value, (np.ndarray, np.void)) and value.dtype.names:
            return self._from_bytes(np.asarray(value).tobytes())
        if isinstance(value, np.ndarray) and value.dtype == self.dtype and value.size == 1:
            return self._from_bytes(value.tobytes())
        if isinstance(value, (bytes, bytearray, memoryview)) and self.dtype.kind != "S":
            return self._from_bytes(bytes(value))
        return None

    def _from_bytes(self, data: bytes) -> np.ndarray:
        if len(data) != self.dtype.itemsize:
            raise MapError(
                f"{self.what}: got {len(data)} bytes, the map's {self.what} type is "
                f"{self.layout.type_name} ({self.dtype.itemsize} bytes)"
            )
        # Not frombuffer(...).copy(): numpy copies a structured array field by field and leaves
        # the padding uninitialised, and the kernel hashes a key's padding bytes too.
        return np.frombuffer(bytearray(data), dtype=self.dtype)

    def _assign(self, view: np.ndarray, node: _Node, value: Any) -> None:
        names = node.names
        if isinstance(value, Mapping):
            items = self._dict_items(node, value)
        elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
            if len(value) != len(names):
                raise MapError(
                    f"{self.what}: {self._where(node)} has {len(names)} fields {names}, "
                    f"got {len(value)} values"
                )
            items = list(zip(names, value, strict=True))
        else:
            raise MapError(
                f"{self.what}: {self._where(node)} needs a tuple or dict of its fields "
                f"{names}, not {type(value).__name__}"
            )
        members = node.members()
        for name, item in items:
            owner, chain = members[name]
            target = view
            for anonymous in chain:
                target = target[anonymous]
            dotted = f"{node.path}.{name}" if node.path else name
            if name in owner.bits:
                storage, shift, width = owner.bits[name]
                bits = self._leaf(item, np.dtype(np.uint64), dotted)
                if not 0 <= int(bits) < (1 << width):
                    raise MapError(f"{self.what}: {dotted} is a {width}-bit field, got {item!r}")
                cell = target[storage]
                old = int(cell[0])
                cell[0] = (old & ~(((1 << width) - 1) << shift)) | (int(bits) << shift)
                continue
            sub = dict(owner.fields)[name]
            if sub is not None:
                self._assign(target[name], sub, item)
            else:
                target[name][0] = self._leaf(item, owner.dtype.fields[name][0], dotted)  # type: ignore[index]

    def _dict_items(self, node: _Node, value: Mapping[str, Any]) -> list[tuple[str, Any]]:
        members = node.members()
        nested: dict[str, dict[str, Any]] = {}
        items: list[tuple[str, Any]] = []
        for name, item in value.items():
            head, _, rest = str(name).partition(".")
            if head not in members or (rest and head in members[head][0].bits):
                raise MapError(
                    f"{self.what}: {self._where(node)} has no field {name!r} (fields: {node.names})"
                )
            if rest:
                nested.setdefault(head, {})[rest] = item
            else:
                items.append((head, item))
        items += list(nested.items())
        return items

    def _where(self, node: _Node) -> str:
        return f"field {node.path!r}" if node.path else self.layout.type_name

    def _leaf(self, value: Any, dtype: np.dtype, where: str) -> Any:
        if isinstance(value, ct._SimpleCData):
            value = value.value
        if dtype.kind == "S":
            data = value.encode() if isinstance(value, str) else value
            if not isinstance(data, (bytes, bytearray)) or len(data) > dtype.itemsize:
                raise MapError(f"{where}: needs a str of at most {dtype.itemsize} bytes")
            return bytes(data)
        if dtype.subdtype is not None:
            base, shape = dtype.subdtype
            try:
                array = np.asarray(value)
            except (TypeError, ValueError) as err:
                raise MapError(f"{where}: needs an array of shape {shape}") from err
            if array.shape != shape:
                raise MapError(f"{where}: needs an array of shape {shape}, got {array.shape}")
            for item in array.ravel():
                self._leaf(item, base, where)
            return array.astype(base)
        if dtype.kind in "iu":
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise MapError(f"{where}: needs an int, got {type(value).__name__} {value!r}")
            info = np.iinfo(dtype)
            if not info.min <= int(value) <= info.max:
                raise MapError(f"{where}: {value} does not fit in {dtype} [{info.min}, {info.max}]")
            return int(value)
        if dtype.kind == "f":
            if not isinstance(value, (int, float, np.integer, np.floating)):
                raise MapError(f"{where}: needs a number, got {type(value).__name__}")
            return float(value)
        if dtype.kind == "b":
            return bool(value)
        raise MapError(f"{where}: cannot convert {value!r} to {dtype}")

    # -- records → Python ------------------------------------------------------------------------

    def unpack(self, records: np.ndarray) -> list[Any]:
        """One Python value per record (see the module docstring for the types)."""
        if len(records) == 0:
            return []
        if self._root is None:
            if self.dtype.kind == "S":
                return list(columns(records, self.layout, "v")["v"])
            return [_python(v) for v in records] if self.dtype.subdtype else records.tolist()
        cols = {
            name: [_python(v) for v in col] if col.dtype == object else col.tolist()
            for name, col in columns(records, self.layout).items()
        }
        return self._rows(self._root, cols, len(records))

    def _rows(self, node: _Node, cols: dict[str, list[Any]], n: int) -> list[Any]:
        parts = self._parts(node, cols, n)
        make = node.record._make
        return [make(row) for row in zip(*parts, strict=True)] if parts else [make(())] * n

    def _parts(self, node: _Node, cols: dict[str, list[Any]], n: int) -> list[list[Any]]:
        # One list per visible field of ``node``, in ``node.names`` order.
        parts: list[list[Any]] = []
        for name, sub in node.fields:
            dotted = f"{node.path}.{name}" if node.path else name
            if sub is None:
                parts.append(cols[dotted])
            elif sub.anonymous:
                parts += self._parts(sub, cols, n)
            else:
                parts.append(self._rows(sub, cols, n))
        for name in node.bits:
            parts.append(cols[f"{node.path}.{name}" if node.path else name])
        return parts
