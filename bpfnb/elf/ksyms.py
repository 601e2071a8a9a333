"""``__ksym`` externs: kfuncs and kernel variables, resolved against the running kernel as
libbpf resolves them, and written into the instructions that use them.

- A kfunc (``extern int bpf_iter_num_new(...) __ksym;``) is the FUNC of that name in the
  kernel's BTF, or in a loaded module's; its prototype must be compatible with the object's.
  Its calls become ``BPF_PSEUDO_KFUNC_CALL`` with the kernel's BTF id (and, for a module, the
  index of the module's BTF fd in the program's ``fd_array``).
- A typed variable (``extern const struct rq runqueues __ksym;``) is the VAR of that name; a
  64-bit load of its address becomes ``BPF_PSEUDO_BTF_ID``.
- A typeless one (``extern const void vfs_read __ksym;``) is an address from
  ``/proc/kallsyms``, loaded as a constant.
- An absent ``__weak`` extern is 0: its address loads as 0 (``bpf_ksym_exists()`` is false)
  and its calls keep BTF id 0, which the verifier accepts in code it proves dead.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bpfnb.elf import btf as btf_module
from bpfnb.elf.btf import Btf, essential_name
from bpfnb.elf.core import types_are_compat
from bpfnb.elf.spec import Extern, ExternReference
from bpfnb.errors import KernelFeatureError
from bpfnb.sys import bpf, kallsyms
from bpfnb.sys.fd import FD
from bpfnb.sys.kernel_btf import VMLINUX_BTF

__all__ = ["KernelBtfs", "KernelSymbol", "apply_externs", "resolve_externs"]

OP_CALL = 0x85
OP_LD_IMM64 = 0x18
PSEUDO_BTF_ID = 3
PSEUDO_KFUNC_CALL = 2


@dataclass(frozen=True)
class KernelSymbol:
    """Where an extern resolved: a BTF id (in vmlinux, or in the module whose BTF fd is
    ``btf_fd``, at ``fd_index`` in ``fd_array``), or an address; nothing for an absent weak
    extern."""

    btf_id: int = 0
    btf_fd: int = 0
    fd_index: int = 0
    address: int = 0

    @property
    def found(self) -> bool:
        return bool(self.btf_id or self.address)


@dataclass
class _Module:
    name: str
    btf: Btf
    fd: FD
    fd_index: int = 0  # its slot in fd_array, once a kfunc call needs it


@dataclass
class KernelBtfs:
    """The kernel's BTF and, opened on first need, the BTF of each loaded module with its fd
    (which instructions and ``fd_array`` name). :meth:`close` closes the fds; the program
    loads keep what they use."""

    _modules: list[_Module] | None = None
    fd_array: list[int] = field(default_factory=list)

    def vmlinux(self, user: str) -> Btf:
        try:
            return btf_module.vmlinux()
        except OSError as err:
            raise KernelFeatureError(
                user, f"this kernel has no BTF ({VMLINUX_BTF}: {err.strerror})"
            ) from err

    def modules(self) -> list[_Module]:
        if self._modules is None:
            self._modules = []
            for btf_id in bpf.btf_ids():
                try:
                    fd = bpf.btf_get_fd_by_id(btf_id)
                except OSError:
                    continue  # freed meanwhile
                info, name = bpf.btf_info(fd.fileno())
                if not info.kernel_btf or name in ("", "vmlinux"):
                    fd.close()
                    continue
                try:
                    self._modules.append(_Module(name, btf_module.module(name), fd))
                except OSError:
                    fd.close()  # the module went away
        return self._modules

    def find(self, name: str, kind: str, user: str) -> tuple[Btf, int, _Module | None] | None:
        """(BTF, id, module or None) of the type ``name`` of ``kind``: vmlinux first, then each
        module's own types, as libbpf searches."""
        vmlinux = self.vmlinux(user)
        type_id = vmlinux.find_id(name, kind)
        if type_id:
            return vmlinux, type_id, None
        for module in self.modules():
            type_id = module.btf.find_id(name, kind)
            if type_id:
                return module.btf, type_id, module
        return None

    def fd_index(self, module: _Module) -> int:
        # Index 0 of fd_array is never a module's (off 0 means vmlinux).
        if not module.fd_index:
            if not self.fd_array:
                self.fd_array.append(-1)
            module.fd_index = len(self.fd_array)
            self.fd_array.append(module.fd.fileno())
        return module.fd_index

    def close(self) -> None:
        for module in self._modules or ():
            with contextlib.suppress(OSError):
                module.fd.close()
        self._modules = []


def _incompatible(ext: Extern, local: Btf, kernel: Btf, kernel_type: int, where: str) -> str:
    return (
        f"its type in the object ({local.type_name(ext.type_id)}) does not match the kernel's "
        f"({kernel.type_name(kernel_type)}, in {where})"
    )


def _resolve_typed(ext: Extern, local: Btf, kernel: KernelBtfs) -> KernelSymbol:
    what = "function" if ext.func else "variable"
    user = f"__ksym {ext.name}"
    # libbpf looks kfuncs up by their essential name (bpf_foo___v2 is bpf_foo).
    name = essential_name(ext.name) if ext.func else ext.name
    found = kernel.find(name, "FUNC" if ext.func else "VAR", user)
    if found is None:
        if ext.weak:
            return KernelSymbol()
        raise KernelFeatureError(
            user, f"the kernel's BTF has no {what} {name!r}, nor has any loaded module's"
        )
    target, type_id, module = found
    where = f"module {module.name}" if module else "vmlinux"
    kernel_type = target.type(type_id).type_id
    if not types_are_compat(local, ext.type_id, target, target.skip_modifiers(kernel_type).id):
        if ext.weak and ext.func:
            return KernelSymbol()
        raise KernelFeatureError(user, _incompatible(ext, local, target, kernel_type, where))
    if module is None:
        return KernelSymbol(type_id)
    index = kernel.fd_index(module) if ext.func else 0
    return KernelSymbol(type_id, module.fd.fileno(), index)


def _resolve_typeless(
    externs: list[Extern], kallsyms_path: str | os.PathLike[str]
) -> dict[str, KernelSymbol]:
    try:
        found = kallsyms.lookup([ext.name for ext in externs], kallsyms_path)
    except OSError as err:
        raise KernelFeatureError(
            f"__ksym {externs[0].name}", f"{kallsyms_path} is not readable: {err.strerror}"
        ) from err
    out = {}
    for ext in externs:
        addresses = {address for address, _ in found.get(ext.name, ())}
        if len(addresses) > 1:
            listed = ", ".join(f"{a:#x}" for a in sorted(addresses))
            raise KernelFeatureError(f"__ksym {ext.name}", f"is ambiguous: {listed}")
        if not addresses and not ext.weak:
            raise KernelFeatureError(f"__ksym {ext.name}", f"is not in {kallsyms_path}")
        out[ext.name] = KernelSymbol(address=addresses.pop() if addresses else 0)
    return out


def resolve_externs(
    externs: Mapping[str, Extern],
    local: Btf,
    kernel: KernelBtfs,
    kallsyms_path: str | os.PathLike[str] = kallsyms.KALLSYMS,
) -> dict[str, KernelSymbol]:
    """Resolve every extern (whether a program uses it or not, as libbpf does); an absent
    strong one, or one whose type differs from the kernel's, is a
    :class:`KernelFeatureError`."""
    resolved = {
        ext.name: _resolve_typed(ext, local, kernel) for ext in externs.values() if not ext.typeless
    }
    typeless = [ext for ext in externs.values() if ext.typeless]
    if typeless:
        resolved.update(_resolve_typeless(typeless, kallsyms_path))
    return resolved


def apply_externs(
    code: bytes, references: Iterable[ExternReference], resolved: Mapping[str, KernelSymbol]
) -> bytes:
    """``code`` with each use of an extern pointing at what it resolved to."""
    out = bytearray(code)
    for ref in references:
        at = ref.insn * 8
        sym = resolved[ref.name]
        regs = out[at + 1]
        if ref.call:
            # An absent weak kfunc keeps id 0: the verifier accepts it where it is dead code.
            out[at + 1] = (regs & 0x0F) | (PSEUDO_KFUNC_CALL << 4)
            struct.pack_into("<hi", out, at + 2, sym.fd_index, sym.btf_id)
        elif sym.btf_id:
            out[at + 1] = (regs & 0x0F) | (PSEUDO_BTF_ID << 4)
            struct.pack_into("<i", out, at + 4, sym.btf_id)
            struct.pack_into("<i", out, at + 12, sym.btf_fd)
        else:
            out[at + 1] = regs & 0x0F
            struct.pack_into("<I", out, at + 4, sym.address & 0xFFFFFFFF)
            struct.pack_into("<I", out, at + 12, sym.address >> 32)
    return bytes(out)
