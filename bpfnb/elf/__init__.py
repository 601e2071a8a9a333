"""The pure-Python ELF door: read clang-built BPF objects, create maps, relocate, load.

``read(path)`` gives an :class:`ObjectSpec` (pure data, no kernel); ``load(spec)`` creates its
maps and loads its programs into a :class:`bpfnb.BpfObject`; :func:`load_elf` also attaches
them by section; :func:`load_source` compiles C with clang first (``%%bpf --elf``).

What it reads, and loads as libbpf loads it:
- programs by section name, in gobpf's and libbpf's conventions (:mod:`~bpfnb.elf.sections`),
  with libbpf's autoload (``SEC("?...")``, ``spec.programs[name].autoload``);
- maps in gobpf's 280-byte ``maps/NAME`` layout, the kernel samples' ``maps`` section (5 or 7
  fields) and libbpf's BTF-defined ``.maps`` (with map-in-map);
- global data (``.rodata*``, ``.data*``, ``.bss*``) as array maps, ``const volatile`` constants
  set from Python;
- subprograms and callbacks, linked into each program that uses them;
- ``.BTF`` and ``.BTF.ext`` (:mod:`~bpfnb.elf.btf`): map key/value types, line info for
  verifier errors, and CO-RE relocations resolved against the kernel's BTF at load
  (:mod:`~bpfnb.elf.core`);
- externs: ``__kconfig`` values and libbpf's ``LINUX_*`` ones (:mod:`~bpfnb.elf.kconfig`),
  kfuncs and ``__ksym`` variables (:mod:`~bpfnb.elf.ksyms`);
- program arrays filled with programs, and struct_ops maps (:mod:`~bpfnb.elf.struct_ops`).
"""

from bpfnb.elf import btf
from bpfnb.elf.compiler import compile_source, load_source
from bpfnb.elf.loader import load, load_elf
from bpfnb.elf.reader import read
from bpfnb.elf.sections import classify
from bpfnb.elf.spec import MapSpec, ObjectSpec, ProgramSpec

__all__ = [
    "MapSpec",
    "ObjectSpec",
    "ProgramSpec",
    "btf",
    "classify",
    "compile_source",
    "load",
    "load_elf",
    "load_source",
    "read",
]
