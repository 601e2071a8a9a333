"""USDT probes in ``%%bpf`` cells, their arguments read by bcc's code (``bpf_usdt_readarg``).

For each probe a cell's function reads, bcc writes functions ``_bpf_readarg_FUNC_N`` that fetch
argument N from the registers or memory at the probe site (switching on the instruction pointer
when the probe has several sites), and bcc's front end turns ``bpf_usdt_readarg(N, ctx, &v)``
inside FUNC into calls of them. Here bcc only writes that text (``USDT.enable_probe``, then
libbcc's ``bcc_usdt_genargs``) and never attaches: FUNC becomes a uprobe program
(``struct pt_regs *ctx``), and :meth:`bpfnb.BpfObject.attach_usdt` puts it at each site's file
offset, where the instruction pointer is the site's address, as bcc's switch expects.

A bcc context made for a process raises the semaphores of the probes it enables, by writing into
that process; closing the context takes that back. Contexts are closed as soon as their text is
written, so the kernel's count (the uprobe's ``ref_ctr_offset``) is the only one.
"""

from __future__ import annotations

import ctypes as ct
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Union

from bpfnb.bcc.bindings import import_bcc
from bpfnb.bcc.conventions import convention
from bpfnb.errors import AttachError, BpfError, NoSuchProgramError, not_found
from bpfnb.link.binaries import find_binary
from bpfnb.object import BpfObject
from bpfnb.usdt import find_sites, process_probes
from bpfnb.usdt.notes import UsdtNote

__all__ = [
    "UsdtProbe",
    "UsdtSpec",
    "UsdtTarget",
    "as_probe",
    "as_probes",
    "attach_targets",
    "check_functions",
    "readarg_text",
    "resolve",
]

_SYNTAX = (
    "PATH:PROVIDER:NAME=FUNC, or PROVIDER:NAME=FUNC with a pid "
    "(e.g. /usr/bin/python3.11:python:function__entry=on_entry)"
)


@dataclass(frozen=True)
class UsdtProbe:
    """A probe whose arguments function ``function`` of a cell reads.

    ``path`` is a path, or a library or program name; empty, the probe is looked for in every
    file the traced process maps.
    """

    path: str
    provider: str
    name: str
    function: str

    @property
    def probe(self) -> str:
        """``provider:name``."""
        return f"{self.provider}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> UsdtProbe:
        """``PATH:PROVIDER:NAME=FUNC``, or ``PROVIDER:NAME=FUNC`` (every file of the process)."""
        where, sep, function = text.strip().rpartition("=")
        parts = where.rsplit(":", 2) if sep else []
        if len(parts) == 2:
            parts = ["", *parts]
        if len(parts) != 3 or not parts[1] or not parts[2] or not function.isidentifier():
            raise ValueError(f"USDT probe {text!r}: expected {_SYNTAX}")
        return cls(parts[0], parts[1], parts[2], function)


#: A probe as :func:`bpfnb.compile` takes it: a :class:`UsdtProbe`, its text
#: (``"PATH:PROVIDER:NAME=FUNC"``) or a tuple ``(PATH, "PROVIDER:NAME", FUNC)``.
UsdtSpec = Union[UsdtProbe, str, tuple[Union[str, None], str, str]]


def as_probe(spec: UsdtSpec) -> UsdtProbe:
    """One probe spec as a :class:`UsdtProbe` (ValueError for a malformed one)."""
    if isinstance(spec, UsdtProbe):
        return spec
    if isinstance(spec, str):
        return UsdtProbe.parse(spec)
    path, probe, function = spec
    provider, sep, name = probe.partition(":")
    if not sep or not provider or not name or ":" in name or not function.isidentifier():
        raise ValueError(
            f"USDT probe {spec!r}: expected (PATH, 'PROVIDER:NAME', FUNC) with FUNC a C name"
        )
    return UsdtProbe(path or "", provider, name, function)


@dataclass(frozen=True)
class UsdtTarget:
    """A probe found: the files whose sites are attached, and the one bcc reads (None: all
    of the process's)."""

    probe: UsdtProbe
    paths: tuple[str, ...]
    context_path: str | None
    sites: tuple[UsdtNote, ...]


def as_probes(specs: Iterable[UsdtSpec]) -> list[UsdtProbe]:
    """The probes of ``specs``; ValueError for a malformed one, or for a function named for
    two (bcc writes one argument reader per function)."""
    probes = [as_probe(spec) for spec in specs]
    functions = [p.function for p in probes]
    repeated = sorted({f for f in functions if functions.count(f) > 1})
    if repeated:
        raise ValueError(
            f"USDT: {', '.join(repeated)} is named for several probes; bcc writes the argument "
            "reader of one probe per function (attach it elsewhere with obj.attach_usdt)"
        )
    return probes


def resolve(specs: Iterable[UsdtSpec], pid: int | None) -> list[UsdtTarget]:
    """Find each probe's sites. AttachError when a probe is not there, or when bcc's reader
    needs a pid that was not given (a semaphore is raised in one process)."""
    probes = as_probes(specs)
    if pid is not None and not os.path.isdir(f"/proc/{pid}"):
        raise AttachError(f"USDT: there is no process {pid}")
    return [_resolve(probe, pid) for probe in probes]


def _resolve(probe: UsdtProbe, pid: int | None) -> UsdtTarget:
    if probe.path:
        path = find_binary(probe.path)
        sites = find_sites(path, probe.provider, probe.name)
        context_path: str | None = path
    elif pid is None:
        raise AttachError(
            f"USDT probe {probe.probe}={probe.function}: name the file that has it "
            f"({_SYNTAX}), or give the pid of a process to search"
        )
    else:
        found = process_probes(pid)
        sites = [n for n in found if (n.provider, n.name) == (probe.provider, probe.name)]
        if not sites:
            known = ", ".join(sorted({n.probe for n in found})) or "none"
            raise AttachError(
                f"no USDT probe {probe.probe} in the files process {pid} maps (its probes: {known})"
            )
        context_path = None
    gated = [site for site in sites if site.semaphore]
    if gated and pid is None:
        raise AttachError(
            f"USDT probe {probe.probe} of {gated[0].path} has a semaphore, which bcc's argument "
            "reader sets by writing into one process: give that process's pid (usdt_pid=, or "
            "--usdt-pid in a %%bpf cell)"
        )
    paths = tuple(dict.fromkeys(site.path for site in sites))
    return UsdtTarget(probe, paths, context_path, tuple(sites))


def readarg_text(targets: list[UsdtTarget], pid: int | None) -> str:
    """bcc's C text that reads the targets' arguments, to compile before the cell."""
    bcc = import_bcc()
    texts = []
    for target in targets:
        context = _context(bcc, target, pid)
        try:
            texts.append(_genargs(bcc, context, target, pid))
        finally:
            _close(bcc, context)
    return "".join(texts)


def _where(target: UsdtTarget, pid: int | None) -> str:
    files = ", ".join(target.paths)
    return files + (f" (process {pid})" if pid is not None else "")


def _context(bcc: Any, target: UsdtTarget, pid: int | None) -> Any:
    try:
        if pid is None:
            return bcc.USDT(path=target.context_path)
        return bcc.USDT(pid=pid, path=target.context_path)
    except bcc.USDTException as err:
        raise AttachError(
            f"bcc cannot read the USDT probes of {_where(target, pid)}: {err}"
        ) from None


def _genargs(bcc: Any, context: Any, target: UsdtTarget, pid: int | None) -> str:
    probe = target.probe
    try:
        context.enable_probe(probe=probe.probe, fn_name=probe.function)
    except bcc.USDTException:
        raise AttachError(
            f"bcc cannot enable USDT probe {probe.probe} of {_where(target, pid)}"
        ) from None
    contexts = (ct.c_void_p * 1)(context.get_context())
    text = bcc.lib.bcc_usdt_genargs(contexts, 1)
    if text is None:
        # bcc tells a probe's sites apart by the instruction pointer: in a process, by their
        # addresses there (the file must be mapped); without one, in a position-independent
        # file, only by their offsets in a page, which two sites may share.
        why = (
            "does the process map that file?"
            if pid is not None
            else "give the pid of the process to trace (usdt_pid=, or --usdt-pid in a %%bpf cell)"
        )
        raise AttachError(
            f"bcc cannot write the argument reader of USDT probe {probe.probe} "
            f"({len(target.sites)} sites in {_where(target, pid)}): {why}"
        )
    return str(text.decode())


def _close(bcc: Any, context: Any) -> None:
    # Undoes the context's semaphore writes now, not whenever the object is collected; its own
    # __del__ then closes nothing.
    bcc.lib.bcc_usdt_close(context.context)
    context.context = None


def check_functions(targets: list[UsdtTarget], functions: list[str]) -> None:
    """Each target's function must be one of the cell's, and one attached by no name
    convention (a USDT probe runs a uprobe program: ``int f(struct pt_regs *ctx)``)."""
    for target in targets:
        name = target.probe.function
        if name not in functions:
            missing = not_found("function", name, functions)
            raise NoSuchProgramError(f"USDT probe {target.probe.probe}: the cell has {missing}")
        found = convention(name)
        if found is not None:
            raise BpfError(
                f"USDT probe {target.probe.probe}: {name} attaches as {found[1]} by its name; "
                "give the probe a function of its own, int FUNC(struct pt_regs *ctx)"
            )


def attach_targets(obj: BpfObject, targets: list[UsdtTarget], pid: int | None) -> None:
    """Attach each target's function at every site of its probe, in every file that has it."""
    for target in targets:
        probe = target.probe
        for path in target.paths:
            obj.attach_usdt(
                probe.function, path, probe.provider, probe.name, pid=-1 if pid is None else pid
            )
