"""What an object file holds, as pure data: :class:`ObjectSpec`, :class:`ProgramSpec`,
:class:`MapSpec`. Nothing here touches the kernel."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field

from bpfnb.elf.asm import Disassembly, disassemble_bytes
from bpfnb.elf.btf import Btf, CoreRelocation, FuncInfo, LineInfo
from bpfnb.elf.btf_layout import data_layout, layout_for
from bpfnb.elf.sections import btf_target
from bpfnb.elf.variables import Variable, encode_value
from bpfnb.frames import Layout
from bpfnb.sys.constants import MapType, ProgType, lower_name

__all__ = [
    "Constants",
    "Extern",
    "ExternReference",
    "MapSpec",
    "ObjectSpec",
    "ProgramSpec",
    "Reference",
    "SectionInfo",
    "Variable",
]

# gobpf's ``version`` value meaning "the running kernel".
KERNEL_VERSION_CURRENT = 0xFFFFFFFE

# Global-data maps (``.rodata``, ``.data``, ``.bss``) larger than this are refused: the kernel
# caps an array's value size near there, and it keeps a hostile size field from allocating.
MAX_DATA_SIZE = 1 << 24


@dataclass(frozen=True)
class Reference:
    """An instruction that refers to a map (``kind="map"``) or into global data (``"data"``).

    ``insn`` indexes the program's linked instructions; ``offset`` is the byte offset into the
    data map's value.
    """

    insn: int
    kind: str
    map: str
    offset: int = 0


@dataclass(frozen=True)
class ExternReference:
    """An instruction that uses a ``__ksym`` extern: a call of a kfunc (``call``), or a 64-bit
    load of its address (``&sym``, a variable or ``bpf_ksym_exists()``)."""

    insn: int
    name: str
    call: bool


@dataclass(frozen=True)
class Extern:
    """A ``__ksym`` extern, resolved against the kernel when the object loads.

    ``btf_id`` is its VAR or FUNC in the object's BTF (0 when the object has no BTF); ``type_id``
    is the variable's type (modifiers skipped; 0 for a typeless ``const void`` symbol, found in
    ``/proc/kallsyms``) or the function's FUNC_PROTO. An absent ``weak`` extern is 0.
    """

    name: str
    func: bool
    weak: bool
    btf_id: int = 0
    type_id: int = 0

    @property
    def typeless(self) -> bool:
        return not self.func and not self.type_id


@dataclass
class MapSpec:
    """A map to create: what ``bpf_map_def``, a ``.maps`` definition or a data section says."""

    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    section: str = ""
    # gobpf: PIN_NONE=0, PIN_OBJECT_NS=1, PIN_GLOBAL_NS=2, PIN_CUSTOM_NS=3 (with ``namespace``);
    # libbpf ``.maps``: LIBBPF_PIN_NONE=0, LIBBPF_PIN_BY_NAME=1. ``layout`` says which.
    pinning: int = 0
    namespace: str = ""
    layout: str = ""  # "gobpf", "samples", "btf", "data" or "struct_ops"
    numa_node: int = 0
    map_extra: int = 0
    inner: MapSpec | None = None
    # map-in-map: slot → name of the map that fills it at load; program array: of the program.
    initial_slots: dict[int, str] = field(default_factory=dict)
    # struct_ops: the member index of each function slot → the program that fills it.
    struct_ops: dict[int, str] = field(default_factory=dict)
    # Global data: the initial value (None for .bss: zeros), and whether it is frozen.
    data: bytes | None = None
    readonly: bool = False
    btf: Btf | None = field(default=None, repr=False)
    key_type_id: int = 0
    value_type_id: int = 0
    # Global data: the variables it holds, by offset.
    variables: list[Variable] = field(default_factory=list, repr=False)
    # Where the definition starts in ``section``.
    offset: int = 0

    @property
    def type_name(self) -> str:
        return lower_name(MapType, self.type)

    @property
    def key_type_name(self) -> str:
        return _c_name(self.btf, self.key_type_id, self.key_size)

    @property
    def value_type_name(self) -> str:
        if self.layout == "data":
            return f"{self.section} ({self.value_size} bytes)"
        return _c_name(self.btf, self.value_type_id, self.value_size)

    @property
    def key_layout(self) -> Layout:
        """The key as a :class:`bpfnb.frames.Layout` (from BTF, or from its size)."""
        return layout_for(self.btf, self.key_type_id, self.key_size, self.section, self.offset)

    @property
    def value_layout(self) -> Layout:
        """The value as a :class:`bpfnb.frames.Layout` (from BTF, or from its size)."""
        if self.layout == "data":
            return data_layout(self.btf, self.section, self.variables, self.value_size)
        return layout_for(self.btf, self.value_type_id, self.value_size, self.section, self.offset)


def _c_name(btf: Btf | None, type_id: int, size: int) -> str:
    if btf is not None and type_id:
        return btf.type_name(type_id)
    return {1: "u8", 2: "u16", 4: "u32", 8: "u64"}.get(size, f"u8[{size}]")


@dataclass
class ProgramSpec:
    """A program, linked with the subprograms it calls, waiting for map fds."""

    name: str
    section: str
    type: ProgType
    expected_attach_type: int
    attach_kind: str
    attach_target: str
    instructions: bytes
    references: list[Reference] = field(default_factory=list)
    license: str = ""
    kernel_version: int = 0
    func_info: list[FuncInfo] = field(default_factory=list)
    line_info: list[LineInfo] = field(default_factory=list)
    # Linked function starts (instruction index → function name), for labels and calls.
    functions: dict[int, str] = field(default_factory=dict)
    btf: Btf | None = field(default=None, repr=False)
    # CO-RE: values to recompute against the kernel's BTF at load time.
    core_relocations: list[CoreRelocation] = field(default_factory=list)
    # Uses of __ksym externs (kfunc calls, kernel variables), patched at load time.
    externs: list[ExternReference] = field(default_factory=list)
    # BPF_PROG_LOAD flags from the section name (sleepable, XDP frags).
    prog_flags: int = 0
    # Whether the load names the kernel target by BTF id (fentry, tp_btf, lsm, iter...).
    attach_btf: bool = False
    #: Whether :func:`bpfnb.elf.load` loads it (libbpf's autoload; off for ``SEC("?...")``).
    autoload: bool = True

    def btf_target(self) -> tuple[str, str]:
        """The kernel BTF (name, kind) this program's load names, for ``attach_btf`` sections."""
        return btf_target(self.expected_attach_type, self.attach_target)

    @property
    def type_name(self) -> str:
        return self.type.name.lower()

    def __len__(self) -> int:
        """Number of 8-byte instruction slots."""
        return len(self.instructions) // 8

    def disassemble(self) -> Disassembly:
        """Readable eBPF assembly: map names at map loads, helper names, labels for jumps."""
        maps = {ref.insn: ref for ref in self.references}
        lines = {info.insn: info for info in self.line_info}
        return disassemble_bytes(self.instructions, self.functions, maps, lines)

    def source_line(self, insn: int) -> LineInfo | None:
        """The C line of instruction ``insn``, when the object has line info."""
        best = None
        for info in self.line_info:
            if info.insn <= insn:
                best = info
            else:
                break
        return best


@dataclass(frozen=True)
class SectionInfo:
    """One ELF section and what the reader made of it (``role``)."""

    index: int
    name: str
    type: str
    size: int
    role: str


class Constants(MutableMapping[str, object]):
    """``const volatile`` globals (in ``.rodata``), readable and settable before load.

    Integers read and write as ``int``; anything else as ``bytes`` of its exact size.
    """

    def __init__(self, spec: ObjectSpec) -> None:
        self._spec = spec

    def _variables(self) -> dict[str, Variable]:
        return {
            name: var
            for name, var in self._spec.variables.items()
            if var.map.startswith(".rodata") and self._spec.maps[var.map].readonly
        }

    def _variable(self, name: str) -> Variable:
        found = self._variables().get(name)
        if found is None:
            known = ", ".join(sorted(self._variables())) or "none"
            raise KeyError(f"no constant {name!r} in .rodata (constants: {known})")
        return found

    def __getitem__(self, name: str) -> object:
        var = self._variable(name)
        data = self._spec.maps[var.map].data or bytes(self._spec.maps[var.map].value_size)
        raw = data[var.offset : var.offset + var.size]
        if var.integer and var.size in (1, 2, 4, 8):
            if self._spec.byteorder == "big":
                return int.from_bytes(raw, "big", signed=var.signed)
            return int.from_bytes(raw, "little", signed=var.signed)
        return raw

    def __setitem__(self, name: str, value: object) -> None:
        var = self._variable(name)
        m = self._spec.maps[var.map]
        m.data = encode_value(var, value, m.data or bytes(m.value_size), self._spec.byteorder)

    def __delitem__(self, name: str) -> None:
        raise TypeError("constants cannot be deleted; set them instead")

    def __iter__(self) -> Iterator[str]:
        return iter(self._variables())

    def __len__(self) -> int:
        return len(self._variables())

    def __repr__(self) -> str:
        return "Constants(" + ", ".join(f"{k}={self[k]!r}" for k in self) + ")"


@dataclass
class ObjectSpec:
    """Everything an ELF object holds, as plain data (see :func:`bpfnb.elf.read`)."""

    path: str
    programs: dict[str, ProgramSpec]
    maps: dict[str, MapSpec]
    license: str = ""
    kernel_version: int = 0
    btf: Btf | None = field(default=None, repr=False)
    variables: dict[str, Variable] = field(default_factory=dict)
    sections: list[SectionInfo] = field(default_factory=list)
    byteorder: str = "little"
    # For the kernel's copy of the BTF: data section sizes, and global symbols' offsets.
    section_sizes: dict[str, int] = field(default_factory=dict, repr=False)
    symbol_offsets: dict[str, int] = field(default_factory=dict, repr=False)
    # ``__kconfig`` externs, and whether each is ``__weak`` (zero when the kernel lacks it).
    kconfig_weak: dict[str, bool] = field(default_factory=dict, repr=False)
    # ``__ksym`` externs by name: kfuncs and kernel variables.
    externs: dict[str, Extern] = field(default_factory=dict, repr=False)
    # Global subprograms with hidden visibility (``__hidden``): their BTF FUNC is made static
    # before load, as libbpf does, so that the verifier checks them in their callers' context.
    hidden_functions: list[str] = field(default_factory=list, repr=False)

    @property
    def constants(self) -> Constants:
        """``const volatile`` globals by name; set them before :func:`bpfnb.elf.load`."""
        return Constants(self)

    @property
    def data_maps(self) -> dict[str, MapSpec]:
        """The global-data maps (``.rodata*``, ``.data*``, ``.bss*``)."""
        return {name: m for name, m in self.maps.items() if m.layout == "data"}

    def __repr__(self) -> str:
        return (
            f"ObjectSpec({self.path!r}, programs={list(self.programs)}, maps={list(self.maps)}, "
            f"license={self.license!r})"
        )

    def _repr_html_(self) -> str:
        import html

        esc = html.escape
        rows = "".join(
            f"<tr><td><code>{esc(p.name)}</code></td><td><code>{esc(p.section)}</code></td>"
            f"<td>{esc(p.type_name)}</td><td>{len(p)}</td></tr>"
            for p in self.programs.values()
        )
        maps = "".join(
            f"<tr><td><code>{esc(m.name)}</code></td><td>{esc(m.type_name)}</td>"
            f"<td>{esc(m.key_type_name)}</td><td>{esc(m.value_type_name)}</td>"
            f"<td>{m.max_entries}</td></tr>"
            for m in self.maps.values()
        )
        return (
            f"<div><b>ObjectSpec</b> <code>{esc(self.path)}</code> (license {esc(self.license)})"
            "<table><tr><th>program</th><th>section</th><th>type</th><th>insns</th></tr>"
            f"{rows}</table><table><tr><th>map</th><th>type</th><th>key</th><th>value</th>"
            f"<th>max entries</th></tr>{maps}</table></div>"
        )
