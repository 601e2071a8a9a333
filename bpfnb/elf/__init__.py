"""The pure-Python ELF loader: read clang-built BPF objects, create maps, relocate, load.

``read(path)`` gives an :class:`ObjectSpec` (pure data, no kernel); ``load(spec)`` creates its
maps and loads its programs into a :class:`bpfnb.object.BpfObject`.
"""

from bpfnb.elf import btf
from bpfnb.elf.asm import disassemble
from bpfnb.elf.loader import ElfProgram, ElfVerifierError, load, load_elf
from bpfnb.elf.reader import read
from bpfnb.elf.sections import classify
from bpfnb.elf.spec import MapSpec, ObjectSpec, ProgramSpec

__all__ = [
    "ElfProgram",
    "ElfVerifierError",
    "MapSpec",
    "ObjectSpec",
    "ProgramSpec",
    "btf",
    "classify",
    "disassemble",
    "load",
    "load_elf",
    "read",
]
