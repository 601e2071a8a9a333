"""What a ``%%bpf`` cell asks for, as data (:class:`CellSpec`), and loading it.

The same spec loads a cell in this process and, pickled, on each engine of a cluster; there a
``{engine}``, ``{pid}`` or ``{host}`` in a ``-D`` value or ``--constant`` is filled with that
engine's own value first (:meth:`CellSpec.for_engine`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace

from bpfnb import bcc, elf
from bpfnb.bcc.usdt import UsdtProbe
from bpfnb.elf.compiler import parse_constants
from bpfnb.object import BpfObject

__all__ = ["ENGINE_FIELDS", "CellSpec", "load_cell"]

#: The per-engine values a cluster cell's ``-D`` and ``--constant`` values may name.
ENGINE_FIELDS = ("engine", "pid", "host")
# ``{pid}``, or ``{{pid}}`` as left by IPython's expansion of the magic line when it failed.
_FIELD = re.compile(r"\{\{?(" + "|".join(ENGINE_FIELDS) + r")\}?\}")


@dataclass(frozen=True)
class CellSpec:
    """A cell's BPF C and its options: what to compile, with which flags, and whether to attach.

    ``elf`` compiles with clang and loads with bpfnb's ELF loader (``clang_flags`` and
    ``constants`` apply there); otherwise libbcc compiles it with ``defines`` and ``cflags``,
    and ``usdt`` names the USDT probes whose arguments its functions read (in process
    ``usdt_pid`` only, when given).
    """

    name: str
    source: str
    defines: dict[str, str] = field(default_factory=dict)
    cflags: str = ""
    attach: bool = True
    elf: bool = False
    clang_flags: str = ""
    constants: tuple[str, ...] = ()
    usdt: tuple[UsdtProbe, ...] = ()
    usdt_pid: int | None = None

    def templated(self) -> list[str]:
        """The per-engine fields its option values name (``["pid"]``)."""
        values = [*self.defines.values(), *self.constants]
        return sorted({m.group(1) for v in values for m in _FIELD.finditer(v)})

    def for_engine(self, **values: object) -> CellSpec:
        """This spec with each ``{field}`` of :data:`ENGINE_FIELDS` filled from ``values``."""

        def fill(text: str) -> str:
            return _FIELD.sub(lambda m: str(values[m.group(1)]), text)

        return replace(
            self,
            defines={key: fill(value) for key, value in self.defines.items()},
            constants=tuple(fill(pair) for pair in self.constants),
        )


def load_cell(spec: CellSpec) -> BpfObject:
    """Compile, load and (unless ``spec.attach`` is false) attach the cell."""
    cflags = shlex.split(spec.cflags)
    if spec.elf:
        flags = [f"-D{key}={value}" for key, value in spec.defines.items()]
        return elf.load_source(
            spec.source,
            name=spec.name,
            clang_flags=[*flags, *cflags, *shlex.split(spec.clang_flags)],
            constants=parse_constants(spec.constants),
            attach=spec.attach,
        )
    return bcc.compile(
        spec.source,
        defines=spec.defines,
        cflags=cflags,
        attach=spec.attach,
        name=spec.name,
        usdt=list(spec.usdt),
        usdt_pid=spec.usdt_pid,
    )
