"""Human labels for the values a histogram counts: times (``ns``, ``us``, ``ms``) and sizes
(``bytes``), like bcc's ``val_type``, for text, plots and live views alike.

``bucket_label(536870912, 1073741823, "ns")`` is ``"537 ms – 1.07 s"`` and
``bucket_label(512, 1023, "bytes")`` is ``"512 B – 1 KiB"``. Without a unit, bounds read as bcc
prints them (``512 -> 1023``).
"""

from __future__ import annotations

__all__ = ["UNITS", "bucket_label", "format_value", "unit_of"]

# unit → (scale of one unit in the base unit, [(factor, suffix)] from the largest down)
_TIME = [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "µs"), (1, "ns")]
_SIZE = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"), (1, "B")]
UNITS: dict[str, tuple[int, list[tuple[int, str]]]] = {
    "ns": (1, _TIME),
    "us": (1_000, _TIME),
    "ms": (1_000_000, _TIME),
    "bytes": (1, _SIZE),
}
_ZERO = {"ns": "0 ns", "us": "0 µs", "ms": "0 ms", "bytes": "0 B"}
# bcc's val_type spellings of the same units.
_ALIASES = {"nsecs": "ns", "usecs": "us", "µs": "us", "msecs": "ms", "B": "bytes", "byte": "bytes"}


def unit_of(name: str | None) -> str | None:
    """The unit a ``val_type``/``unit`` name means (``"usecs"`` → ``"us"``), or None."""
    if name is None:
        return None
    name = _ALIASES.get(name, name)
    return name if name in UNITS else None


def format_value(value: int, unit: str) -> str:
    """``value`` of ``unit`` with the largest suffix that keeps it at least 1, 3 significant
    digits (``format_value(1536, "bytes")`` is ``"1.5 KiB"``)."""
    scale, steps = UNITS[unit]
    if value == 0:
        return _ZERO[unit]
    base = value * scale
    for factor, suffix in steps:
        if base >= factor or factor == steps[-1][0]:
            number = base / factor
            text = f"{number:.3g}" if number < 1000 else f"{number:.0f}"
            return f"{text} {suffix}"
    raise AssertionError("unreachable: the last step always matches")


def bucket_label(low: int, high: int, unit: str | None, kind: str = "log2") -> str:
    """The label of the bucket counting values ``low..high``."""
    if unit is None:
        if kind == "linear":
            return str(low)
        # bcc prints slot 1 (value 1) as "0 -> 1": the value range a reader expects to start at 0.
        return f"{0 if low == high == 1 else low} -> {high}"
    if kind == "linear" or low == high:
        return format_value(low, unit)
    return f"{format_value(low, unit)} – {format_value(high + 1, unit)}"
