"""USDT probe sites from an ELF file's ``.note.stapsdt`` notes (SystemTap SDT, version 3).

Each note (owner ``"stapsdt"``, type 3) describes one probe site: its address, the link-time
address of ``.stapsdt.base``, the address of its semaphore (0 when it has none), then the
provider, name and argument strings. A prelinked file moved its sections after the notes were
written: the difference between ``.stapsdt.base``'s real address and the one in the note moves
the site and the semaphore by as much. Uprobes want file offsets, so both addresses are turned
into offsets through the ``PT_LOAD`` segment that holds them.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from bpfnb.errors import ElfError

__all__ = ["NOTE_SECTION", "UsdtNote", "read_notes", "relocate", "vaddr_to_offset"]

NOTE_SECTION = ".note.stapsdt"
BASE_SECTION = ".stapsdt.base"
NOTE_OWNER = b"stapsdt"
NOTE_TYPE = 3  # NT_STAPSDT


@dataclass(frozen=True)
class UsdtNote:
    """One USDT probe site of ``path``.

    ``address`` and ``semaphore`` are virtual addresses after the prelink adjustment (as the
    file would be mapped at its link-time base); ``offset`` and ``semaphore_offset`` are file
    offsets, what a uprobe and its ``ref_ctr_offset`` take. A site without a semaphore has
    ``semaphore == semaphore_offset == 0``.
    """

    path: str
    provider: str
    name: str
    address: int
    offset: int
    semaphore: int
    semaphore_offset: int
    arguments: str
    base: int = 0

    @property
    def probe(self) -> str:
        """``provider:name``."""
        return f"{self.provider}:{self.name}"


def relocate(address: int, note_base: int, base_address: int | None) -> int:
    """``address`` moved by as much as ``.stapsdt.base`` moved since the note was written
    (``base_address`` None: the file has no such section, nothing moves)."""
    if base_address is None or not note_base or not address:
        return address
    return address + base_address - note_base


def vaddr_to_offset(segments: list[tuple[int, int, int]], address: int) -> int | None:
    """The file offset of virtual ``address``, from ``(p_vaddr, p_filesz, p_offset)`` of the
    ``PT_LOAD`` segments; None when no segment maps it from the file."""
    for vaddr, filesz, offset in segments:
        if vaddr <= address < vaddr + filesz:
            return address - vaddr + offset
    return None


def read_notes(path: str | os.PathLike[str]) -> list[UsdtNote]:
    """Every USDT probe site of the ELF file at ``path``, in note order ([] when it has none).

    A malformed note raises :class:`bpfnb.errors.ElfError` naming the section and offset.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            return _read(f, name)
    except ELFError as err:
        raise ElfError(f"{name}: not a readable ELF file: {err}") from err


def _read(f: BinaryIO, path: str) -> list[UsdtNote]:
    elf = ELFFile(f)
    section = elf.get_section_by_name(NOTE_SECTION)
    if section is None:
        return []
    base_section = elf.get_section_by_name(BASE_SECTION)
    base_address = int(base_section["sh_addr"]) if base_section is not None else None
    segments = [
        (int(s["p_vaddr"]), int(s["p_filesz"]), int(s["p_offset"]))
        for s in elf.iter_segments()
        if s["p_type"] == "PT_LOAD"
    ]
    order = "<" if elf.little_endian else ">"
    word = "Q" if elf.elfclass == 64 else "I"
    notes = []
    for at, desc in _raw_notes(section.data(), order):
        pc, note_base, sema, text = _fields(desc, order, word, at)
        provider, probe, arguments = text
        address = relocate(pc, note_base, base_address)
        semaphore = relocate(sema, note_base, base_address)
        offset = vaddr_to_offset(segments, address)
        if offset is None:
            raise ElfError(
                f"{path}: probe {provider}:{probe} at {address:#x} is in no loadable segment",
                NOTE_SECTION,
                at,
            )
        semaphore_offset = vaddr_to_offset(segments, semaphore) if semaphore else 0
        if semaphore_offset is None:
            raise ElfError(
                f"{path}: the semaphore of {provider}:{probe} at {semaphore:#x} is not "
                "backed by the file",
                NOTE_SECTION,
                at,
            )
        notes.append(
            UsdtNote(
                path=path,
                provider=provider,
                name=probe,
                address=address,
                offset=offset,
                semaphore=semaphore,
                semaphore_offset=semaphore_offset,
                arguments=arguments,
                base=note_base,
            )
        )
    return notes


def _raw_notes(data: bytes, order: str) -> list[tuple[int, bytes]]:
    # (offset in the section, descriptor) of each stapsdt note; other owners are skipped.
    header = struct.Struct(order + "III")
    found = []
    at = 0
    while at + header.size <= len(data):
        namesz, descsz, kind = header.unpack_from(data, at)
        name_at = at + header.size
        desc_at = name_at + _align4(namesz)
        end = desc_at + _align4(descsz)
        if desc_at + descsz > len(data):
            raise ElfError("note runs past the end of the section", NOTE_SECTION, at)
        owner = data[name_at : name_at + namesz].rstrip(b"\0")
        if owner == NOTE_OWNER and kind == NOTE_TYPE:
            found.append((at, data[desc_at : desc_at + descsz]))
        at = end
    return found


def _fields(desc: bytes, order: str, word: str, at: int) -> tuple[int, int, int, list[Any]]:
    addresses = struct.Struct(order + word * 3)
    if len(desc) < addresses.size:
        raise ElfError("stapsdt note too short for its three addresses", NOTE_SECTION, at)
    pc, base, sema = addresses.unpack_from(desc)
    strings = desc[addresses.size :].split(b"\0")
    if len(strings) < 3:
        raise ElfError("stapsdt note lacks its provider, name or arguments", NOTE_SECTION, at)
    text = [s.decode("utf-8", "replace") for s in strings[:3]]
    return pc, base, sema, text


def _align4(n: int) -> int:
    return (n + 3) & ~3
