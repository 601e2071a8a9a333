"""CO-RE: recompute field offsets, sizes and existence, type ids and enum values against the
running kernel's BTF, so that one object works across kernel versions.

Each ``struct bpf_core_relo`` names a local type and an access string (``"0:2:1"``: an array
index on the root pointer, then member or element indexes). The same path is followed in the
kernel's BTF by member *names*, and the instruction's immediate (or memory offset) gets the
kernel's value. A field the kernel lacks makes the instruction an invalid helper call (as libbpf
does), which the verifier rejects only if the program can reach it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bpfnb.elf.btf import Btf, BtfType, CoreRelocation, Member, essential_name
from bpfnb.errors import ElfError

__all__ = ["KINDS", "CoreError", "apply_core_relocations", "resolve", "types_are_compat"]

# ``enum bpf_core_relo_kind``
KINDS = (
    "field_byte_offset",
    "field_byte_size",
    "field_exists",
    "field_signed",
    "field_lshift_u64",
    "field_rshift_u64",
    "type_id_local",
    "type_id_target",
    "type_exists",
    "type_size",
    "enumval_exists",
    "enumval_value",
    "type_matches",
)
_FIELD_KINDS = range(0, 6)
_TYPE_KINDS = range(6, 10)
_ENUM_KINDS = range(10, 12)

# libbpf's marker for "this relocation could not be resolved": call helper 0xbad2310.
POISON_HELPER = 0xBAD2310


class CoreError(ElfError):
    """A CO-RE relocation that does not make sense for its instruction or types."""


@dataclass(frozen=True)
class _Field:
    bit_offset: int
    type: BtfType  # modifiers skipped
    bitfield_size: int


def _field(btf: Btf, root_id: int, path: list[int | str], by_name: bool) -> _Field | None:
    """Follow ``path`` from type ``root_id``: the first step is an index on the root pointer,
    then member indexes (``by_name=False``, local side) or member names (target side) and
    array indexes."""
    t = btf.skip_modifiers(root_id)
    bit_offset = int(path[0]) * btf.size_of(t.id) * 8
    bitfield = 0
    for step in path[1:]:
        if t.kind in ("STRUCT", "UNION"):
            found = _member(btf, t, step, by_name)
            if found is None:
                return None
            offset, member = found
            bit_offset += offset
            bitfield = member.bitfield_size
            t = btf.skip_modifiers(member.type_id)
        elif t.kind == "ARRAY":
            index = int(step)
            if t.nelems and index >= t.nelems:
                return None
            element = btf.skip_modifiers(t.type_id)
            bit_offset += index * btf.size_of(element.id) * 8
            bitfield = 0
            t = element
        else:
            return None
    return _Field(bit_offset, t, bitfield)


def _member(
    btf: Btf, t: BtfType, step: int | str, by_name: bool, depth: int = 0
) -> tuple[int, Member] | None:
    # (bit offset, member) of a member by index or name; names are searched through anonymous
    # struct/union members too, as C lets one name their fields directly.
    if not by_name:
        index = int(step)
        return (t.members[index].offset, t.members[index]) if index < len(t.members) else None
    for m in t.members:
        if m.name == step:
            return m.offset, m
    if depth < 8:
        for m in t.members:
            inner = btf.skip_modifiers(m.type_id)
            if not m.name and inner.kind in ("STRUCT", "UNION"):
                found = _member(btf, inner, step, True, depth + 1)
                if found is not None:
                    return m.offset + found[0], found[1]
    return None


def _names(btf: Btf, root_id: int, indexes: list[int]) -> list[int | str] | None:
    # The local access path with member indexes turned into member names.
    t = btf.skip_modifiers(root_id)
    path: list[int | str] = [indexes[0]]
    for index in indexes[1:]:
        if t.kind in ("STRUCT", "UNION"):
            if index >= len(t.members):
                return None
            member = t.members[index]
            if not member.name:
                # An anonymous member in the path: the next step names a field inside it.
                t = btf.skip_modifiers(member.type_id)
                continue
            path.append(member.name)
            t = btf.skip_modifiers(member.type_id)
        elif t.kind == "ARRAY":
            path.append(index)
            t = btf.skip_modifiers(t.type_id)
        else:
            return None
    return path


def _field_value(btf: Btf, found: _Field, kind: int) -> int:
    t = found.type
    if kind == 2:
        return 1
    if kind == 3:
        return int((t.kind == "INT" and t.signed) or (t.kind.startswith("ENUM") and t.kind_flag))
    size = btf.size_of(t.id)
    if not found.bitfield_size:
        byte_offset, byte_size, bit_size = found.bit_offset // 8, size, size * 8
    else:
        # The smallest aligned load of the field's storage size that covers the bitfield.
        bit_size = found.bitfield_size
        byte_size = size
        byte_offset = found.bit_offset // 8 // byte_size * byte_size
        while found.bit_offset + bit_size - byte_offset * 8 > byte_size * 8:
            if byte_size >= 8:
                raise CoreError("bitfield straddles a 64-bit load", ".BTF.ext", 0)
            byte_size *= 2
            byte_offset = found.bit_offset // 8 // byte_size * byte_size
    if kind == 0:
        return byte_offset
    if kind == 1:
        return byte_size
    if kind == 4:
        return 64 - (found.bit_offset + bit_size - byte_offset * 8)
    return 64 - bit_size  # kind 5


_ENUMS = ("ENUM", "ENUM64")
# Kinds whose compatibility ends at the kind (libbpf's bpf_core_types_are_compat).
_COMPAT_BY_KIND = ("VOID", "STRUCT", "UNION", "ENUM", "ENUM64", "FWD")


def _kinds_compat(a: BtfType, b: BtfType) -> bool:
    return a.kind == b.kind or (a.kind in _ENUMS and b.kind in _ENUMS)


def types_are_compat(
    local: Btf, local_id: int, target: Btf, target_id: int, level: int = 32
) -> bool:
    """Whether two types are compatible as CO-RE and ``__ksym`` externs need: the same kind
    through pointers, arrays and function prototypes (parameters one by one, then the return
    type); structs, unions, enums and forward declarations by kind alone; integers unless they
    are old-style bitfields. Typedefs and qualifiers are skipped. Names are not compared: the
    caller found the target by name."""
    if not _kinds_compat(local.type(local_id), target.type(target_id)):
        return False
    for _ in range(32):
        a, b = local.skip_modifiers(local_id), target.skip_modifiers(target_id)
        if not _kinds_compat(a, b):
            return False
        if a.kind in _COMPAT_BY_KIND:
            return True
        if a.kind == "INT":
            return a.int_offset == 0 and b.int_offset == 0
        if a.kind in ("PTR", "ARRAY"):
            local_id, target_id = a.type_id, b.type_id
            continue
        if a.kind != "FUNC_PROTO" or len(a.members) != len(b.members):
            return False
        for pa, pb in zip(a.members, b.members):
            if level <= 0 or not types_are_compat(
                local, local.skip_modifiers(pa.type_id).id,
                target, target.skip_modifiers(pb.type_id).id, level - 1,
            ):  # fmt: skip
                return False
        local_id, target_id = a.type_id, b.type_id
    return False


def _candidates(local_type: BtfType, target: Btf) -> list[BtfType]:
    # Target types of the same essential name (flavors on either side are ignored) and a
    # compatible kind, as libbpf collects them.
    if not local_type.name:
        return []
    found = target.ids_with_essential_name(essential_name(local_type.name))
    return [t for t in map(target.type, found) if _kinds_compat(local_type, t)]


def _agree(
    relo: CoreRelocation, results: list[tuple[int, int]], local_value: int, missing: int | None
) -> tuple[int, int] | None:
    # Every matching candidate must give the same value; none matching gives ``missing``.
    if not results:
        return None if missing is None else (local_value, missing)
    values = {value for _, value in results}
    if len(values) > 1:
        raise CoreError(
            f"CO-RE relocation ({KINDS[relo.kind]}, access {relo.access!r}) is ambiguous: the "
            f"kernel has several matching types giving {sorted(values)}",
            ".BTF.ext",
            relo.record,
        )
    return results[0]


def resolve(relo: CoreRelocation, local: Btf, target: Btf) -> tuple[int, int] | None:
    """(local value, kernel value) of one relocation; None when the kernel lacks the field,
    type or enumerator (and the relocation is not an existence check).

    Every kernel type of the same essential name and kind is a candidate; those that match
    must agree on the value, or the relocation is ambiguous (a :class:`CoreError`).
    """
    try:
        indexes = [int(part) for part in relo.access.split(":")]
    except ValueError:
        raise CoreError(f"bad access string {relo.access!r}", ".BTF.ext", relo.record) from None
    if not indexes or min(indexes) < 0:
        raise CoreError(f"bad access string {relo.access!r}", ".BTF.ext", relo.record)
    local_type = local.skip_modifiers(relo.type_id)
    kind = relo.kind
    if kind == 6:
        return relo.type_id, relo.type_id
    # Candidates are found by the root type's own name, a typedef's included.
    candidates = _candidates(local.type(relo.type_id), target)
    if kind in _TYPE_KINDS or kind == 12:
        local_value = {7: relo.type_id, 8: 1, 9: local.size_of(relo.type_id), 12: 1}[kind]
        results = [
            (local_value, {7: t.id, 8: 1, 9: target.size_of(t.id), 12: 1}[kind])
            for t in candidates
            if types_are_compat(local, relo.type_id, target, t.id)
        ]
        return _agree(relo, results, local_value, 0 if kind in (8, 12) else None)
    if kind in _ENUM_KINDS:
        if local_type.kind not in _ENUMS or indexes[0] >= len(local_type.members):
            raise CoreError(f"enum relocation on {local_type.kind}", ".BTF.ext", relo.record)
        enumerator = local_type.members[indexes[0]]
        local_value = 1 if kind == 10 else enumerator.value
        results = [
            (local_value, 1 if kind == 10 else m.value)
            for t in candidates
            for m in target.skip_modifiers(t.id).members
            if m.name == enumerator.name
        ]
        return _agree(relo, results, local_value, 0 if kind == 10 else None)
    if kind not in _FIELD_KINDS:
        raise CoreError(f"unknown CO-RE relocation kind {kind}", ".BTF.ext", relo.record)
    local_field = _field(local, relo.type_id, list(indexes), by_name=False)
    path = _names(local, relo.type_id, indexes)
    if local_field is None or path is None:
        raise CoreError(
            f"access {relo.access!r} does not fit {local_type.name!r}", ".BTF.ext", relo.record
        )
    local_value = _field_value(local, local_field, kind)
    results = []
    for t in candidates:
        found = _field(target, t.id, path, by_name=True)
        if found is not None:
            results.append((local_value, _field_value(target, found, kind)))
    return _agree(relo, results, local_value, 0 if kind == 2 else None)


def apply_core_relocations(
    code: bytes, relocations: list[CoreRelocation], local: Btf, target: Btf, program: str
) -> bytes:
    """``code`` with every CO-RE relocation resolved against ``target`` (the kernel's BTF)."""
    out = bytearray(code)
    count = len(out) // 8
    for relo in relocations:
        if not 0 <= relo.insn < count:
            raise CoreError(
                f"{program}: CO-RE relocation on instruction {relo.insn}", ".BTF.ext", relo.record
            )
        at = relo.insn * 8
        result = resolve(relo, local, target)
        if result is None:
            # The kernel lacks what this instruction needs: poison it, as libbpf does; the
            # verifier complains only if the program can get there.
            struct.pack_into("<BBhi", out, at, 0x85, 0, 0, POISON_HELPER)
            continue
        _patch(out, at, result[1], relo, program)
    return bytes(out)


def _patch(out: bytearray, at: int, value: int, relo: CoreRelocation, program: str) -> None:
    opcode = out[at]
    cls = opcode & 0x07
    if cls in (0x04, 0x07) and not opcode & 0x08:  # ALU with an immediate
        if not -(1 << 31) <= value < (1 << 32):
            raise CoreError(
                f"{program}: CO-RE value {value} does not fit an immediate", ".BTF.ext", relo.record
            )
        struct.pack_into("<I", out, at + 4, value & 0xFFFFFFFF)
    elif cls in (0x01, 0x02, 0x03):  # memory access: the offset field
        if not -(1 << 15) <= value < (1 << 15):
            raise CoreError(
                f"{program}: CO-RE offset {value} does not fit", ".BTF.ext", relo.record
            )
        struct.pack_into("<h", out, at + 2, value)
    elif opcode == 0x18 and at + 16 <= len(out):  # 64-bit immediate
        struct.pack_into("<I", out, at + 4, value & 0xFFFFFFFF)
        struct.pack_into("<I", out, at + 12, (value >> 32) & 0xFFFFFFFF)
    else:
        kind = KINDS[relo.kind] if relo.kind < len(KINDS) else str(relo.kind)
        raise CoreError(
            f"{program}: CO-RE relocation ({kind}) on instruction {relo.insn} "
            f"(opcode {opcode:#04x}), which takes no value",
            ".BTF.ext",
            relo.record,
        )
