"""``probes()``: the USDT probes of a binary, or of every file a process has mapped."""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from typing import TYPE_CHECKING

from bpfnb.errors import ElfError
from bpfnb.lazy import lazy_import
from bpfnb.link.binaries import find_binary
from bpfnb.usdt.notes import UsdtNote, read_notes

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

__all__ = ["COLUMNS", "mapped_files", "probes", "process_probes", "read_probes"]

#: The columns of :func:`probes`' frame, in order.
COLUMNS = [f.name for f in fields(UsdtNote) if f.name != "base"]


def read_probes(path_or_lib: str) -> list[UsdtNote]:
    """The probe sites of one file: a path, or a library or program name (``"c"``)."""
    return read_notes(find_binary(path_or_lib))


def mapped_files(pid: int) -> list[str]:
    """The files process ``pid`` has mapped (``/proc/PID/maps``), in order of first mapping."""
    seen: dict[str, None] = {}
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].startswith("/"):
                path = parts[5].rstrip("\n")
                if not path.endswith(" (deleted)"):
                    seen.setdefault(path, None)
    return list(seen)


def process_probes(pid: int) -> list[UsdtNote]:
    """The probe sites of every file process ``pid`` has mapped, named by the paths it maps."""
    found: list[UsdtNote] = []
    for path in mapped_files(pid):
        # The process may live in another mount namespace: read its files through its root.
        inside = f"/proc/{pid}/root{path}"
        try:
            notes = read_notes(inside if os.path.exists(inside) else path)
        except (OSError, ElfError):
            continue  # not an ELF file (locale archives, caches) or gone since
        found += [
            UsdtNote(**{**asdict(note), "path": path}) if note.path != path else note
            for note in notes
        ]
    return found


def probes(path_or_pid: str | int) -> pd.DataFrame:
    """The USDT probes of a binary (a path, or a library or program name) or of a process
    (a pid: every file it has mapped), one row per probe site.

    Columns: ``path``, ``provider``, ``name``, ``address`` (link-time address), ``offset``
    (file offset, where a uprobe goes), ``semaphore`` and ``semaphore_offset`` (0 without one)
    and ``arguments`` (the note's argument string, e.g. ``"-4@%edi 8@-16(%rbp)"``).
    """
    if isinstance(path_or_pid, int) or str(path_or_pid).isdigit():
        notes = process_probes(int(path_or_pid))
    else:
        notes = read_probes(str(path_or_pid))
    rows = [{name: getattr(note, name) for name in COLUMNS} for note in notes]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("address", "offset", "semaphore", "semaphore_offset"):
        frame[column] = frame[column].astype("uint64")
    return frame.sort_values(["path", "provider", "name", "address"], kind="stable").reset_index(
        drop=True
    )
