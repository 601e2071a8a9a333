"""Attaching an object's programs: automatically where the section names the target, and by
explicit ``obj.attach_*`` calls where it cannot (:class:`ElfObject`).

Sections attached automatically (libbpf's and gobpf's spellings):

- ``tracepoint/cat/name``, ``tp/cat/name``
- ``raw_tracepoint/name``, ``raw_tp/name``
- ``kprobe/func``, ``kretprobe/func``, ``ksyscall/name``, ``kretsyscall/name``
- ``uprobe/path:symbol``, ``uretprobe/path:symbol`` (a library name such as ``libc.so.6`` works)
- ``fentry/func``, ``fexit/func``, ``fmod_ret/func``, ``tp_btf/name``, ``lsm/hook``

Every other program (socket filters, XDP, cgroup programs, perf events, bare ``uprobe``) waits
for an explicit call, as its target is not in its name.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
from typing import TYPE_CHECKING, Any

from bpfnb.errors import AttachError
from bpfnb.link import cgroup as cgroup_link
from bpfnb.link.base import FdLink
from bpfnb.link.fentry import attach_fentry
from bpfnb.link.kprobe import attach_kprobe
from bpfnb.link.perf_event import attach_perf_event
from bpfnb.link.raw_tracepoint import attach_raw_tracepoint
from bpfnb.link.socket_filter import attach_socket_filter
from bpfnb.link.tracepoint import attach_tracepoint
from bpfnb.link.uprobe import attach_uprobe
from bpfnb.link.xdp import attach_xdp
from bpfnb.object import BpfObject, Link, Program

__all__ = ["AttachMixin", "ElfObject", "attach_elf_object", "attach_from_section", "parse_section"]

TRACING_KINDS = ("fentry", "fexit", "fmod_ret", "tp_btf", "lsm")
AUTO_KINDS = (
    "tracepoint",
    "raw_tracepoint",
    "kprobe",
    "kretprobe",
    "ksyscall",
    "kretsyscall",
    "uprobe",
    "uretprobe",
    *TRACING_KINDS,
)
_SYSCALL_PREFIX = {"x86_64": "__x64_sys_", "aarch64": "__arm64_sys_", "s390x": "__s390x_sys_"}


def parse_section(section: str) -> tuple[str, str]:
    """(attach kind, target) of a program section, as the ELF loader classifies it."""
    from bpfnb.elf.sections import classify

    kind = classify(section)
    return kind.attach_kind, kind.attach_target


def _split_uprobe_target(target: str) -> tuple[str, str | int]:
    # "path:symbol[+off]" or "path:0x1234" (libbpf); the path may itself hold no colon.
    path, sep, where = target.rpartition(":")
    if not sep or not path or not where:
        raise AttachError(
            f"uprobe section target {target!r} is not 'path:symbol': attach it with "
            "obj.attach_uprobe(prog, path_or_lib, symbol)"
        )
    try:
        return path, int(where, 16) if where.lower().startswith("0x") else int(where)
    except ValueError:
        return path, where


def attach_from_section(prog: Program) -> FdLink | None:
    """Attach ``prog`` where its section says; None when the section names no target."""
    kind, target = parse_section(prog.section)
    if kind not in AUTO_KINDS or (not target and kind not in TRACING_KINDS):
        return None
    if kind == "tracepoint":
        return attach_tracepoint(prog.fd, target)
    if kind == "raw_tracepoint":
        return attach_raw_tracepoint(prog.fd, target)
    if kind in ("kprobe", "kretprobe"):
        func, _, offset = target.partition("+")
        return attach_kprobe(prog.fd, func, ret=kind == "kretprobe", offset=int(offset or "0", 0))
    if kind in ("ksyscall", "kretsyscall"):
        prefix = _SYSCALL_PREFIX.get(platform.machine(), "sys_")
        return attach_kprobe(prog.fd, prefix + target, ret=kind == "kretsyscall")
    if kind in ("uprobe", "uretprobe"):
        path, where = _split_uprobe_target(target)
        return attach_uprobe(prog.fd, path, where, ret=kind == "uretprobe")
    return attach_fentry(prog.fd, target, kind)


def attach_elf_object(obj: BpfObject) -> list[Link]:
    """Attach every program of ``obj`` whose section names its target; returns the new links.

    On failure, the links made by this call are closed again before the error propagates.
    """
    made: list[Link] = []
    try:
        for name, prog in obj.programs.items():
            if prog.links:
                continue
            new = attach_from_section(prog)
            if new is not None:
                made.append(obj.add_link(name, new))
    except BaseException:
        for link in reversed(made):
            with contextlib.suppress(Exception):
                link.close()
        for prog in obj.programs.values():
            prog.links[:] = [x for x in prog.links if x not in made]
        raise
    return made


class AttachMixin:
    """``attach()`` and explicit ``attach_*`` methods for a :class:`BpfObject`.

    ``prog`` is a program name or a :class:`Program`; each link is recorded on the object, so
    ``close()`` detaches it.
    """

    programs: dict[str, Program]

    if TYPE_CHECKING:  # provided by BpfObject

        def add_link(self, program: str, link: Link) -> Link: ...

    def _program(self, prog: str | Program) -> Program:
        if isinstance(prog, Program):
            return prog
        try:
            return self.programs[prog]
        except KeyError:
            known = ", ".join(self.programs) or "none"
            raise KeyError(f"no program {prog!r} (programs: {known})") from None

    def _record(self, prog: Program, link: Any) -> Any:
        self.add_link(prog.name, link)
        return link

    def attach(self) -> list[Link]:
        """Attach every program whose section names its target (``tracepoint/...``, ...)."""
        return attach_elf_object(self)  # type: ignore[arg-type]

    def attach_tracepoint(self, prog: str | Program, target: str) -> FdLink:
        """Attach to tracepoint ``"category:name"``."""
        p = self._program(prog)
        return self._record(p, attach_tracepoint(p.fd, target))

    def attach_raw_tracepoint(self, prog: str | Program, name: str) -> FdLink:
        """Attach to raw tracepoint ``name`` (``"sys_enter"``)."""
        p = self._program(prog)
        return self._record(p, attach_raw_tracepoint(p.fd, name))

    def attach_kprobe(self, prog: str | Program, func: str, ret: bool = False) -> FdLink:
        """Attach to kernel function ``func`` (its return with ``ret=True``)."""
        p = self._program(prog)
        return self._record(p, attach_kprobe(p.fd, func, ret=ret))

    def attach_uprobe(
        self,
        prog: str | Program,
        path_or_lib: str,
        symbol_or_offset: str | int,
        pid: int = -1,
        ret: bool = False,
    ) -> FdLink:
        """Attach to a user function: ``obj.attach_uprobe(prog, "c", "malloc")``."""
        p = self._program(prog)
        return self._record(p, attach_uprobe(p.fd, path_or_lib, symbol_or_offset, pid, ret))

    def attach_fentry(self, prog: str | Program) -> FdLink:
        """Attach a fentry/fexit program where its load named (its section)."""
        p = self._program(prog)
        kind, target = parse_section(p.section) if p.section else ("fentry", "")
        return self._record(p, attach_fentry(p.fd, target, kind))

    def attach_perf_event(
        self,
        prog: str | Program,
        type: int | str = "cpu-clock",
        config: int = 0,
        sample_period: int = 0,
        sample_freq: int = 0,
        pid: int = -1,
        cpu: int = -1,
    ) -> FdLink:
        """Run a perf_event program on samples (``type`` a perf type or "cpu-clock")."""
        p = self._program(prog)
        link = attach_perf_event(
            p.fd,
            type,
            config,
            sample_period=sample_period,
            sample_freq=sample_freq,
            pid=pid,
            cpu=cpu,
        )
        return self._record(p, link)

    def attach_socket_filter(
        self, prog: str | Program, sock_or_ifname: socket.socket | int | str
    ) -> FdLink:
        """Filter a socket, or every packet on an interface (``"lo"``) via a packet socket."""
        p = self._program(prog)
        return self._record(p, attach_socket_filter(p.fd, sock_or_ifname))

    def attach_cgroup(
        self, prog: str | Program, cgroup_path: str, attach_type: str | int | None = None
    ) -> FdLink:
        """Attach to a cgroup v2 directory as ``"ingress"``, ``"egress"``, ``"sock_create"``...

        Without ``attach_type``, the program's section decides (``cgroup_skb/egress``).
        """
        p = self._program(prog)
        if attach_type is None:
            attach_type = _section_attach_type(p)
        return self._record(p, cgroup_link.attach_cgroup(p.fd, cgroup_path, attach_type))

    def attach_xdp(self, prog: str | Program, ifname: str | int, mode: str = "auto") -> FdLink:
        """Attach to a network interface (``mode`` "auto", "skb", "native" or "offload")."""
        p = self._program(prog)
        return self._record(p, attach_xdp(p.fd, ifname, mode))


def _section_attach_type(prog: Program) -> int:
    from bpfnb.elf.sections import classify

    kind = classify(prog.section) if prog.section else None
    if kind is None or not kind.expected_attach_type:
        raise AttachError(
            f"program {prog.name!r} (section {prog.section!r}) does not say where in a cgroup it "
            "attaches: pass attach_type='ingress' or 'egress'"
        )
    return kind.expected_attach_type


class ElfObject(AttachMixin, BpfObject):
    """A :class:`BpfObject` loaded from an ELF file: explicit ``attach_*`` methods, and pins.

    ``pins`` maps a map name to where it is pinned; ``close(unpin=True)`` removes those pins,
    while plain ``close()`` keeps them for the next load to reuse.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pins: dict[str, str] = {}

    def detach(self) -> None:
        """Detach every program but keep programs and maps loaded (maps stay readable)."""
        for program in self.programs.values():
            for link in program.links:
                link.close()

    def close(self, unpin: bool = False) -> None:
        """Detach everything and close every fd; with ``unpin``, also remove this object's pins."""
        try:
            super().close()
        finally:
            if unpin:
                from bpfnb.elf.pinning import unpin as remove_pin

                for path in self.pins.values():
                    remove_pin(path)
                self.pins.clear()

    def _pin_lines(self) -> list[str]:
        return [f"  pinned {name} at {path}" for name, path in self.pins.items() if os.sep in path]

    def __repr__(self) -> str:
        return "\n".join([super().__repr__(), *self._pin_lines()])
