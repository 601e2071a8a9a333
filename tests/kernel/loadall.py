"""What libbpf makes of an object: ``bpftool prog loadall`` pins its programs in a bpffs
directory made for the test (and removed after), and their tags are read back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from tests.conftest import need


def bpftool_json(*args: str) -> object:
    out = subprocess.run(["bpftool", *args, "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def bpftool_loadall(path: str | os.PathLike[str], inspect=None) -> dict[str, str] | None:
    """Program name → tag of each program bpftool loads from ``path``; None when bpftool
    refuses the object. ``inspect(pinned_dir)`` runs while the programs are still loaded."""
    need(shutil.which("bpftool") is not None, "bpftool is not installed")
    need(os.path.ismount("/sys/fs/bpf"), "bpffs is not mounted at /sys/fs/bpf")
    root = Path(f"/sys/fs/bpf/bpfnb-loadall-{uuid.uuid4().hex[:8]}")
    root.mkdir()
    try:
        done = subprocess.run(
            ["bpftool", "prog", "loadall", str(path), str(root / "progs")],
            capture_output=True,
            text=True,
        )
        if done.returncode or not (root / "progs").is_dir():
            return None
        tags = {}
        for pinned in sorted((root / "progs").iterdir()):
            info = bpftool_json("prog", "show", "pinned", str(pinned))
            tags[pinned.name] = info["tag"]  # type: ignore[index]
        if inspect is not None:
            inspect(root / "progs")
        return tags
    finally:
        shutil.rmtree(root, ignore_errors=True)


def tags(obj) -> dict[str, str]:
    """Program name → tag of a loaded :class:`bpfnb.BpfObject`."""
    return {name: prog.tag for name, prog in obj.programs.items()}
