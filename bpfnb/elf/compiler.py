"""Compile BPF C with clang into an ELF object, for ``%%bpf --elf`` cells and scripts.

:func:`compile_source` turns C text into an object file (raising :class:`CompileError` with the
text's own line numbers); :func:`load_source` also loads it with the ELF loader and attaches it
by section, like :func:`bpfnb.compile` does for bcc.
"""

from __future__ import annotations

import atexit
import functools
import os
import platform
import re
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from bpfnb.diagnostics import parse_diagnostics
from bpfnb.elf.loader import load_elf
from bpfnb.errors import CompileError, Diagnostic
from bpfnb.object import BpfObject
from bpfnb.sys.kernel_btf import VMLINUX_BTF

__all__ = [
    "COUNTED_INCLUDES",
    "INCLUDE_DIR",
    "clang_command",
    "compile_source",
    "elf_cflags",
    "load_source",
    "parse_constants",
    "vmlinux_header_dir",
    "with_counted_submits",
]

#: bpfnb's own ``<bpf/bpf_helpers.h>``, ``<bpf/bpf_tracing.h>`` and ``<bpfnb/counted.h>``.
INCLUDE_DIR = str(Path(__file__).parent / "include")
CELL_FILE = "cell.bpf.c"
_TARGET_ARCH = {"x86_64": "x86", "aarch64": "arm64", "s390x": "s390", "ppc64le": "powerpc"}
_INCLUDE = re.compile(r"^[ \t]*#[ \t]*include\b.*$", re.MULTILINE)
_VMLINUX_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*[<"]vmlinux\.h[>"]', re.MULTILINE)


@functools.cache
def _work_dir() -> str:
    path = tempfile.mkdtemp(prefix="bpfnb-elf-")
    atexit.register(shutil.rmtree, path, True)
    return path


def _multiarch_include() -> list[str]:
    # <linux/types.h> includes <asm/types.h>, which Debian keeps under the multiarch directory.
    multiarch = sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu"
    path = f"/usr/include/{multiarch}"
    return ["-I", path] if os.path.isdir(path) else []


def vmlinux_header_dir() -> str:
    """A directory holding ``vmlinux.h`` for the running kernel, made from its BTF by bpftool
    once per kernel release and cached (``~/.cache/bpfnb/vmlinux/<release>``)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    directory = cache / "bpfnb" / "vmlinux" / os.uname().release
    header = directory / "vmlinux.h"
    if header.exists():
        return str(directory)
    btf = VMLINUX_BTF
    if not os.path.exists(btf):
        raise FileNotFoundError(
            f"this kernel exposes no BTF ({btf} is missing: CONFIG_DEBUG_INFO_BTF is off)"
        )
    bpftool = shutil.which("bpftool") or next(
        (p for p in ("/usr/sbin/bpftool", "/sbin/bpftool") if os.path.exists(p)), None
    )
    if bpftool is None:
        raise FileNotFoundError("bpftool is not installed (Debian/Ubuntu: apt install bpftool)")
    directory.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [bpftool, "btf", "dump", "file", btf, "format", "c"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise FileNotFoundError(f"bpftool could not dump the kernel's BTF: {result.stderr}")
    tmp = header.with_suffix(f".h.{os.getpid()}")
    tmp.write_text(result.stdout)
    tmp.replace(header)  # atomic: a concurrent compile never sees half a header
    return str(directory)


def elf_cflags(source: str = "") -> list[str]:
    """clang flags for BPF C: bpfnb's headers, the target arch, and ``vmlinux.h`` when
    ``source`` includes it."""
    arch = _TARGET_ARCH.get(platform.machine(), platform.machine())
    flags = ["-I", INCLUDE_DIR, *_multiarch_include(), f"-D__TARGET_ARCH_{arch}"]
    if _VMLINUX_INCLUDE.search(source):
        flags[:0] = ["-I", vmlinux_header_dir()]
    return flags


def clang_command(source_path: str, output: str, flags: Iterable[str] = ()) -> list[str]:
    """The clang command line that compiles one BPF C file."""
    clang = shutil.which("clang")
    if clang is None:
        raise CompileError([], "clang is not installed (Debian/Ubuntu: apt install clang)")
    return [
        clang,
        "-O2",
        "-g",
        "-target",
        "bpf",
        "-fno-caret-diagnostics",
        "-fno-color-diagnostics",
        "-c",
        source_path,
        "-o",
        output,
        *flags,
    ]


#: The header that includes, in the place of a cell's last ``#include``, that line and then
#: ``<bpfnb/counted.h>``.
COUNTED_INCLUDES = "bpfnb-includes.h"


def with_counted_submits(text: str) -> tuple[str, str]:
    """``text`` with ``<bpfnb/counted.h>`` included after its last ``#include``, and the header
    (:data:`COUNTED_INCLUDES`) that does it.

    The last ``#include`` becomes ``#include "bpfnb-includes.h"``, and the header holds that
    directive (under a ``#line`` that gives clang's messages about it the cell's line) and then
    ``<bpfnb/counted.h>``. The text keeps its lines: clang records each line's own text in the
    BTF line info, which the verifier and disassembly show (a ``#line`` in the text would shift
    that text, in clang 14, against the line numbers). Text without any ``#include`` is returned
    as it is; clang is given the header with ``-include``.
    """
    includes = list(_INCLUDE.finditer(text))
    if not includes:
        return text, "#include <bpfnb/counted.h>\n"
    last = includes[-1]
    line = text[: last.start()].count("\n") + 1
    header = f'#line {line} "{CELL_FILE}"\n{last.group(0)}\n#include <bpfnb/counted.h>\n'
    return text[: last.start()] + f'#include "{COUNTED_INCLUDES}"' + text[last.end() :], header


def compile_source(
    text: str, clang_flags: str | Iterable[str] = (), name: str = "cell", counted: bool = True
) -> str:
    """Compile BPF C (a cell's text) into an object file and return its path.

    ``clang_flags`` (a string is split like a shell would) are added after bpfnb's own. With
    ``counted``, the text includes ``<bpfnb/counted.h>``, so that every failed event submit is
    counted. Errors raise :class:`CompileError` whose diagnostics carry the cell's line numbers.
    """
    return _compile(text, clang_flags, name, counted)[0]


def _compile(
    text: str, clang_flags: str | Iterable[str], name: str, counted: bool
) -> tuple[str, list[Diagnostic]]:
    # The object's path, and clang's warnings about the text.
    if isinstance(clang_flags, str):
        clang_flags = shlex.split(clang_flags)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "cell"
    directory = Path(tempfile.mkdtemp(prefix=f"{safe}-", dir=_work_dir()))
    source_path = directory / CELL_FILE
    output = directory / f"{safe}.o"
    extra: list[str] = []
    if counted:
        cell, header = with_counted_submits(text)
        (directory / COUNTED_INCLUDES).write_text(header)
        if cell == text:
            extra = ["-include", str(directory / COUNTED_INCLUDES)]
    else:
        cell = text
    source_path.write_text(cell)
    try:
        flags = elf_cflags(text)
    except FileNotFoundError as err:
        match = _VMLINUX_INCLUDE.search(text)
        line = text[: match.start()].count("\n") + 1 if match else 1
        raise CompileError(
            [Diagnostic(line, 1, "fatal error", f"cannot make vmlinux.h: {err}")]
        ) from err
    cmd = clang_command(str(source_path), str(output), [*flags, *extra, *clang_flags])
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=directory)
    diagnostics = parse_diagnostics(result.stderr, text, CELL_FILE)
    if result.returncode != 0:
        raise CompileError(diagnostics, result.stderr)
    return str(output), [d for d in diagnostics if d.severity == "warning" and d.line > 0]


def load_source(
    text: str,
    *,
    name: str = "cell",
    clang_flags: str | Iterable[str] = (),
    constants: Mapping[str, object] | None = None,
    attach: bool = True,
    pin_root: str | None = None,
    pin: bool = True,
) -> BpfObject:
    """Compile ``text`` with clang, load it with the ELF loader and (by default) attach it by
    section: the :class:`~bpfnb.BpfObject` is named ``name`` and keeps ``text`` as its source.
    Pinning is as for :func:`bpfnb.elf.load`.
    """
    path, warnings = _compile(text, clang_flags, name, counted=True)
    obj = load_elf(path, constants=constants, attach=attach, pin_root=pin_root, pin=pin, name=name)
    obj.source = text
    obj.warnings = warnings
    return obj


def parse_constants(pairs: Iterable[str]) -> dict[str, object]:
    """``["K=V", ...]`` from ``--constant K=V`` options: integers (any base) or strings."""
    constants: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--constant takes NAME=VALUE, not {pair!r}")
        try:
            constants[key] = int(value, 0)
        except ValueError:
            constants[key] = value
    return constants
