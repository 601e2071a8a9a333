"""struct_ops maps laid out for the kernel, as libbpf lays them out.

A ``SEC(".struct_ops")`` variable of type ``struct tcp_congestion_ops`` becomes a map whose
value is the kernel's ``struct bpf_struct_ops_tcp_congestion_ops``: its ``data`` member holds
the kernel's ``struct tcp_congestion_ops``, into which each member of the object's struct is
copied by name, and each function pointer becomes the fd of the program that implements it.
That program loads with the kernel struct's BTF id as ``attach_btf_id`` and the member's index
as ``expected_attach_type``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from bpfnb.elf.btf import Btf, essential_name
from bpfnb.elf.ksyms import KernelBtfs
from bpfnb.elf.spec import MapSpec
from bpfnb.errors import ElfError, KernelFeatureError, MapError

__all__ = ["VALUE_PREFIX", "StructOpsLayout", "lay_out"]

VALUE_PREFIX = "bpf_struct_ops_"


@dataclass
class StructOpsLayout:
    """A struct_ops map's value in the kernel's layout, waiting for its programs' fds."""

    map: str
    kernel_type_id: int  # struct tcp_congestion_ops
    value_type_id: int  # struct bpf_struct_ops_tcp_congestion_ops
    value: bytearray = field(repr=False)
    # Where each program's fd goes in ``value``, and each program's member index.
    slots: dict[int, str] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)

    def with_fds(self, fds: Mapping[str, int]) -> bytes:
        """The value, with each function slot holding its program's fd."""
        value = bytearray(self.value)
        for offset, program in self.slots.items():
            fd = fds.get(program)
            if fd is None:
                raise MapError(
                    f"struct_ops map {self.map!r} needs program {program!r}, which is not "
                    "loaded (its autoload is off)"
                )
            struct.pack_into("<Q", value, offset, fd)
        return bytes(value)


def _member(btf: Btf, type_id: int, name: str) -> tuple[int, int, int] | None:
    # (index, bit offset, type id) of the member called ``name``.
    for index, member in enumerate(btf.type(type_id).members):
        if member.name == name:
            return index, member.offset, member.type_id
    return None


def lay_out(spec: MapSpec, kernel: KernelBtfs) -> StructOpsLayout:
    """The kernel's layout of the struct_ops map ``spec``; a :class:`KernelFeatureError` when the
    kernel lacks its struct, an :class:`ElfError` when the object's struct does not fit it."""
    local = spec.btf
    assert local is not None and spec.data is not None  # the reader requires both
    local_type = local.type(spec.value_type_id)
    name = essential_name(local_type.name)
    user = f"struct_ops {spec.name} (struct {name})"
    found = kernel.find(VALUE_PREFIX + name, "STRUCT", user)
    if found is None:
        raise KernelFeatureError(user, f"the kernel has no struct_ops type {name!r}")
    target, value_id, module = found
    if module is not None:
        raise KernelFeatureError(
            user, f"{name!r} is in module {module.name}: bpfnb registers vmlinux struct_ops only"
        )
    kernel_id = target.find_id(name, "STRUCT")
    data = next(
        (m for m in target.type(value_id).members if m.type_id == kernel_id and kernel_id), None
    )
    if data is None:
        raise KernelFeatureError(user, f"{VALUE_PREFIX}{name} holds no struct {name}")
    value = bytearray(target.type(value_id).size)
    base = data.offset // 8
    layout = StructOpsLayout(spec.name, kernel_id, value_id, value)
    for index, member in enumerate(local_type.members):
        where = (spec.section, spec.offset + member.offset // 8)
        size = local.size_of(member.type_id)
        raw = spec.data[member.offset // 8 : member.offset // 8 + size]
        found_member = _member(target, kernel_id, member.name)
        program = spec.struct_ops.get(index)
        if found_member is None:
            if any(raw) or program:
                raise KernelFeatureError(user, f"the kernel's struct has no {member.name!r}")
            continue  # libbpf skips members the kernel lacks, when they are zero
        kernel_index, kernel_offset, kernel_type = found_member
        if (
            member.bitfield_size
            or local.skip_modifiers(member.type_id).kind == "INT"
            and (local.skip_modifiers(member.type_id).int_offset)
        ):
            raise ElfError(f"{user}: bitfield {member.name!r} is not supported", *where)
        mine, theirs = local.skip_modifiers(member.type_id), target.skip_modifiers(kernel_type)
        if mine.kind != theirs.kind:
            raise ElfError(
                f"{user}: member {member.name!r} is a {mine.kind}, the kernel's a {theirs.kind}",
                *where,
            )
        at = base + kernel_offset // 8
        if mine.kind == "PTR":
            if target.kind_of(target.skip_modifiers(theirs.type_id).id) != "FUNC_PROTO":
                raise ElfError(f"{user}: the kernel's {member.name!r} is not a function", *where)
            if program:
                layout.slots[at] = program
                layout.members[program] = kernel_index
            continue
        if target.size_of(kernel_type) != size:
            raise ElfError(
                f"{user}: member {member.name!r} is {size} bytes, the kernel's "
                f"{target.size_of(kernel_type)}",
                *where,
            )
        value[at : at + size] = raw
    return layout
