"""``BpfObject``: what ``%%bpf``, ``%%bpf --elf``, :func:`bpfnb.compile` and
:func:`bpfnb.load_elf` return, whichever door loaded it.

Its programs, maps and links, the attach methods (program first, one set for both doors), event
streams, and ``close()``, which detaches and frees everything.
"""

from __future__ import annotations

import contextlib
import html
import os
import socket
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from bpfnb.closing import CloseCallbacks, Closing
from bpfnb.errors import (
    AttachError,
    BpfError,
    Diagnostic,
    NoSuchMapError,
    NoSuchProgramError,
    not_found,
)
from bpfnb.events import EventStream, check_stream_type, open_stream
from bpfnb.events.drops import DropCounter
from bpfnb.events.perfbuf import DEFAULT_PAGES
from bpfnb.frames import as_layout, format_value
from bpfnb.link import (
    IterLink,
    Link,
    StructOps,
    attach_by_kind,
    attach_cgroup,
    attach_fentry,
    attach_iter,
    attach_kprobe,
    attach_perf_event,
    attach_raw_tracepoint,
    attach_socket_filter,
    attach_struct_ops,
    attach_tracepoint,
    attach_uprobe,
    attach_xdp,
)
from bpfnb.maps import EventMap, Map
from bpfnb.sys import bpf
from bpfnb.sys.constants import MapType, ProgType
from bpfnb.usdt import attach_usdt
from bpfnb.usdt.specs import IP_MAP, SPECS_MAP, SpecTable

__all__ = ["BpfObject", "Maps", "Program", "ProgramLoader"]


@dataclass
class Program:
    """A loaded program: its fd, type, and where it is attached.

    ``attach_kind``/``attach_target`` say where :meth:`BpfObject.attach` puts it (from an ELF
    section or a bcc function name); empty when it needs an explicit ``attach_*`` call. ``fd`` is
    owned by ``owner`` (an :class:`bpfnb.sys.FD`), or by the door that loaded it.
    """

    name: str
    fd: int
    type: ProgType
    attach_kind: str = ""
    attach_target: str = ""
    section: str = ""
    expected_attach_type: int = 0
    links: list[Link] = field(default_factory=list)
    owner: Any = field(default=None, repr=False)
    spec: Any = field(default=None, repr=False)  # the ELF loader's ProgramSpec

    @property
    def type_name(self) -> str:
        """The program type as bpftool names it (``tracepoint``, ``kprobe``...)."""
        return self.type.name.lower()

    @property
    def attach_points(self) -> list[str]:
        """Where the program is attached now, e.g. ``tracepoint:syscalls:sys_enter_getppid``."""
        return [f"{link.kind}:{link.target}" for link in self.links if not link.closed]

    @property
    def tag(self) -> str:
        """The kernel's tag (hash) of the program's instructions."""
        return bytes(bpf.prog_info(self.fd).tag).hex()

    @property
    def id(self) -> int:
        """The kernel's id of the program."""
        return int(bpf.prog_info(self.fd).id)

    def disassemble(self) -> Any:
        """Readable eBPF assembly of the program as loaded (ELF programs)."""
        if self.spec is None:
            raise BpfError(f"{self.name}: no instructions recorded (only ELF programs keep them)")
        return self.spec.disassemble()


class ProgramLoader(Protocol):
    """What a door offers for programs it loads on demand: bcc compiles every function but
    loads one only when it is attached, with the type the attach call needs."""

    def function_names(self) -> list[str]: ...

    def load(self, name: str, prog_type: ProgType) -> Program: ...


class BpfObject(Closing):
    """Programs, maps and links loaded together. ``close()`` detaches and frees everything.

    Closing is idempotent; the object is also a context manager. Anything that must stop when
    the object closes (a stream, a live view) registers through :meth:`on_close`.

    The ``attach_*`` methods take the program first (a name or a :class:`Program`), record the
    link so that ``close()`` detaches it, and return it.
    """

    def __init__(
        self,
        name: str,
        programs: Mapping[str, Program],
        maps: Mapping[str, Map],
        *,
        loader: ProgramLoader | None = None,
        drop_counters: Map | None = None,
        counted: Collection[str] = (),
        closers: list[Callable[[], None]] | None = None,
        source: str = "",
        pins: Mapping[str, str] | None = None,
        spec: Any = None,
        warnings: list[Diagnostic] | None = None,
        struct_ops: Mapping[str, StructOps] | None = None,
    ) -> None:
        self.name = name
        self.programs: dict[str, Program] = dict(programs)
        #: The maps by name; a name that is not there raises a :class:`MapError` that says which
        #: are (and what was meant, for a typo).
        self.maps: dict[str, Map] = Maps(name, maps)
        self.source = source
        #: Where maps are pinned (map name → bpffs path); ``close(unpin=True)`` removes them.
        self.pins: dict[str, str] = dict(pins or {})
        #: The ELF loader's :class:`bpfnb.elf.ObjectSpec` (None for bcc objects).
        self.spec = spec
        #: What the compiler warned about the source (its diagnostics, in its line numbers).
        self.warnings: list[Diagnostic] = list(warnings or [])
        #: struct_ops maps by name, ready to register (:meth:`attach_struct_ops`).
        self.struct_ops: dict[str, StructOps] = dict(struct_ops or {})
        self._registered: dict[str, Link] = {}
        self._usdt_specs: SpecTable | None = None
        #: The door's loader of programs not loaded yet (bcc's: ``obj.loader.bpf`` is bcc's
        #: own ``BPF`` object); None when everything is loaded (ELF objects).
        self.loader = loader
        # bpfnb's hidden per-CPU counts of failed submits, by event map name (see bpfnb.events),
        # and the event maps whose submits the program counts there.
        self._drop_counters = drop_counters
        self._counted = frozenset(counted)
        # Run last-in first-out at close, after links and maps: what owns programs and maps.
        self._closers: list[Callable[[], None]] = list(closers or [])
        self._on_close = CloseCallbacks()
        self._closed = False
        for map_ in self.maps.values():
            map_.owner = self

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def attached(self) -> bool:
        """Whether any program is attached now."""
        return any(not link.closed for _, link in self.links)

    @property
    def links(self) -> list[tuple[str, Link]]:
        """Every attachment made through this object, as (program name, link); a registered
        struct_ops map, as (map name, link)."""
        links = [(name, link) for name, prog in self.programs.items() for link in prog.links]
        return links + list(self._registered.items())

    def add_link(self, program: str | Program, link: Link) -> Link:
        """Record a link made for ``program`` elsewhere (e.g. with :mod:`bpfnb.link`), so that
        ``close()`` detaches it."""
        if self._closed:
            link.close()
            raise BpfError(f"{self.name}: object is closed")
        self._program(program).links.append(link)
        return link

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) when the object closes; views and streams stop this way."""
        self._on_close.add(callback)

    def on_close_weak(self, obj: Any, method: str) -> None:
        """Like :meth:`on_close`, but without keeping ``obj`` alive."""
        self._on_close.add_weak(obj, method)

    def detach(self) -> None:
        """Detach every program but keep programs and maps loaded (maps stay readable)."""
        errors: list[BaseException] = []
        for _, link in reversed(self.links):
            _collect(link.close, errors)
        if errors:
            raise errors[0]

    def close(self, unpin: bool = False) -> None:
        """Detach every program and close every fd; with ``unpin``, also remove this object's
        pins (plain ``close()`` keeps them for the next load to reuse). Idempotent."""
        if self._closed:
            if unpin:
                self._unpin()
            return
        self._closed = True
        errors = self._on_close.run()
        for _, link in reversed(self.links):
            _collect(link.close, errors)
        # Mark every Map closed before its owner frees the fd, so that nothing (a live view, a
        # stream) reads a reused fd number afterwards.
        hidden = [self._drop_counters] if self._drop_counters is not None else []
        for map_ in [*self.maps.values(), *hidden]:
            _collect(map_.close, errors)
        for closer in reversed(self._closers):
            _collect(closer, errors)
        self._closers.clear()
        if unpin:
            self._unpin()
        if errors:
            raise errors[0]

    def _unpin(self) -> None:
        for path in self.pins.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.pins.clear()

    # -- programs --------------------------------------------------------------------------------

    def _program(self, prog: str | Program, prog_type: ProgType | None = None) -> Program:
        # A loaded program, or (bcc) a function loaded now with the type the attach call needs.
        if isinstance(prog, Program):
            return prog
        if prog in self.programs:
            return self.programs[prog]
        if self._closed:
            raise BpfError(f"{self.name}: object is closed")
        if self.loader is not None and prog in self.loader.function_names():
            if prog_type is None:
                raise BpfError(f"{self.name}: {prog!r} is not loaded; attach it to load it")
            program = self.loader.load(prog, prog_type)
            self.programs[prog] = program
            return program
        names = sorted({*self.programs, *(self.loader.function_names() if self.loader else [])})
        raise NoSuchProgramError(f"{self.name} has {not_found('program', prog, names)}")

    def _record(self, prog: Program, attach: Callable[[], Link]) -> Link:
        if self._closed:
            raise BpfError(f"{self.name}: object is closed")
        link = attach()
        prog.links.append(link)
        return link

    # -- attaching -------------------------------------------------------------------------------

    def attach(self) -> list[Link]:
        """Attach every program whose name says where (ELF sections such as
        ``tracepoint/cat/name``, bcc functions such as ``kprobe__func``), except those already
        attached. On failure, the links this call made are closed again before the error
        propagates."""
        made: list[Link] = []
        try:
            for prog in list(self.programs.values()):
                if prog.attach_kind == "usdt" and prog.attach_target and not prog.links:
                    path, provider, name = _usdt_target(prog.attach_target)
                    made += self.attach_usdt(prog, path, provider, name)
                elif prog.attach_kind and not prog.links:
                    link = attach_by_kind(prog.fd, prog.attach_kind, prog.attach_target)
                    if link is not None:
                        prog.links.append(link)
                        made.append(link)
            for name in self.struct_ops:
                if name not in self._registered:
                    made.append(self.attach_struct_ops(name))
        except BaseException:
            for undone in reversed(made):
                with contextlib.suppress(Exception):
                    undone.close()
            for prog in self.programs.values():
                prog.links[:] = [x for x in prog.links if x not in made]
            self._registered = {n: x for n, x in self._registered.items() if x not in made}
            raise
        return made

    def attach_struct_ops(self, name: str) -> Link:
        """Register the struct_ops map ``name`` (a TCP congestion control, ...) with the kernel;
        closing the link, or the object, unregisters it."""
        if self._closed:
            raise BpfError(f"{self.name}: object is closed")
        ops = self.struct_ops.get(name)
        if ops is None:
            known = ", ".join(self.struct_ops) or "none"
            raise KeyError(f"{self.name} has no struct_ops map {name!r} (it has: {known})")
        current = self._registered.get(name)
        if current is not None and not current.closed:
            raise AttachError(f"struct_ops {name} is registered already")
        link = attach_struct_ops(ops)
        self._registered[name] = link
        return link

    def attach_tracepoint(self, prog: str | Program, tracepoint: str) -> Link:
        """Attach to tracepoint ``"category:name"`` (``"syscalls:sys_enter_openat"``)."""
        p = self._program(prog, ProgType.TRACEPOINT)
        return self._record(p, lambda: attach_tracepoint(p.fd, tracepoint))

    def attach_raw_tracepoint(self, prog: str | Program, tracepoint: str) -> Link:
        """Attach to raw tracepoint ``tracepoint`` (``"sys_enter"``, no category)."""
        p = self._program(prog, ProgType.RAW_TRACEPOINT)
        return self._record(p, lambda: attach_raw_tracepoint(p.fd, tracepoint))

    def attach_kprobe(
        self, prog: str | Program, function: str, ret: bool = False, offset: int = 0
    ) -> Link:
        """Attach to kernel function ``function`` (to its return with ``ret=True``)."""
        p = self._program(prog, ProgType.KPROBE)
        return self._record(p, lambda: attach_kprobe(p.fd, function, ret=ret, offset=offset))

    def attach_uprobe(
        self,
        prog: str | Program,
        path_or_lib: str,
        symbol_or_offset: str | int,
        pid: int = -1,
        ret: bool = False,
    ) -> Link:
        """Attach to a user function: ``obj.attach_uprobe(prog, "c", "malloc")``.

        ``path_or_lib`` is a path or a library name found as the linker would (``"c"`` is libc);
        ``symbol_or_offset`` a symbol (``"f+0x4"`` works) or a file offset; ``pid`` limits the
        probe to one process; ``ret=True`` makes a uretprobe.
        """
        p = self._program(prog, ProgType.KPROBE)
        return self._record(
            p, lambda: attach_uprobe(p.fd, path_or_lib, symbol_or_offset, pid=pid, ret=ret)
        )

    def attach_usdt(
        self,
        prog: str | Program,
        path_or_lib: str,
        provider: str,
        name: str,
        pid: int = -1,
        cookie: int = 0,
    ) -> list[Link]:
        """Attach at every site of USDT probe ``provider:name`` of a binary or library (one
        link per site); while attached, the kernel keeps the probe's semaphore set. ``pid``
        limits it to one process.

        A program built with libbpf's ``usdt.bpf.h`` (``BPF_USDT``, ``bpf_usdt_arg()``) reads
        its arguments through specs bpfnb writes into the object's ``__bpf_usdt_specs`` map, and
        ``cookie`` is what its ``bpf_usdt_cookie()`` returns; any other program gets ``cookie``
        from ``bpf_get_attach_cookie()``.
        """
        p = self._program(prog, ProgType.KPROBE)
        if self._closed:
            raise BpfError(f"{self.name}: object is closed")
        links = attach_usdt(
            p.fd, path_or_lib, provider, name, pid=pid, cookie=cookie, specs=self._spec_table()
        )
        p.links.extend(links)
        return list(links)

    def _spec_table(self) -> SpecTable | None:
        # libbpf's usdt.bpf.h maps, when the object has them: one table for all its programs.
        specs = self.maps.get(SPECS_MAP)
        if specs is None:
            return None
        if self._usdt_specs is None:
            ips = self.maps.get(IP_MAP)
            self._usdt_specs = SpecTable(
                specs.fd, specs.max_entries, ips.fd if ips is not None else None
            )
        return self._usdt_specs

    def attach_fentry(self, prog: str | Program) -> Link:
        """Attach a fentry/fexit/fmod_ret/lsm program where its load named (bcc: ``kfunc__``)."""
        p = self._program(prog, ProgType.TRACING)
        kind = p.attach_kind or "fentry"
        return self._record(p, lambda: attach_fentry(p.fd, p.attach_target, kind))

    def attach_iter(self, prog: str | Program) -> IterLink:
        """Attach an iterator program (``SEC("iter/task")``); ``link.read()`` runs it once and
        returns what it wrote."""
        p = self._program(prog, ProgType.TRACING)
        link = attach_iter(p.fd, p.attach_target)
        self.add_link(p, link)
        return link

    def attach_perf_event(
        self,
        prog: str | Program,
        event: int | str = "cpu-clock",
        config: int = 0,
        sample_period: int = 0,
        sample_freq: int = 0,
        pid: int = -1,
        cpu: int = -1,
    ) -> Link:
        """Run a perf_event program on samples of ``event`` (a perf type with ``config``, or a
        name such as ``"cpu-clock"``), on every CPU or one, for every process or one."""
        p = self._program(prog, ProgType.PERF_EVENT)
        return self._record(
            p,
            lambda: attach_perf_event(
                p.fd,
                event,
                config,
                sample_period=sample_period,
                sample_freq=sample_freq,
                pid=pid,
                cpu=cpu,
            ),
        )

    def attach_socket_filter(
        self, prog: str | Program, sock_or_ifname: socket.socket | int | str
    ) -> Link:
        """Filter a socket, or every packet on an interface (``"lo"``) through a packet socket
        that the link owns (``link.socket``)."""
        p = self._program(prog, ProgType.SOCKET_FILTER)
        return self._record(p, lambda: attach_socket_filter(p.fd, sock_or_ifname))

    def attach_cgroup(
        self, prog: str | Program, cgroup_path: str, attach_type: str | int | None = None
    ) -> Link:
        """Attach to a cgroup v2 directory as ``"ingress"``, ``"egress"``, ``"sock_create"``...

        Without ``attach_type``, the program's section decides (``cgroup_skb/egress``).
        """
        p = self._program(prog, ProgType.CGROUP_SKB)
        if attach_type is None:
            if not p.expected_attach_type:
                raise AttachError(
                    f"program {p.name!r} does not say where in a cgroup it attaches: pass "
                    "attach_type='ingress' or 'egress'"
                )
            attach_type = p.expected_attach_type
        kind = attach_type
        return self._record(p, lambda: attach_cgroup(p.fd, cgroup_path, kind))

    def attach_xdp(self, prog: str | Program, interface: str | int, mode: str = "auto") -> Link:
        """Attach to a network interface (``mode`` "auto", "skb", "native" or "offload")."""
        p = self._program(prog, ProgType.XDP)
        return self._record(p, lambda: attach_xdp(p.fd, interface, mode))

    # -- maps and events -------------------------------------------------------------------------

    def stream(
        self,
        name: str,
        maxlen: int = 100_000,
        event_type: Any = None,
        *,
        perf_pages: int = DEFAULT_PAGES,
    ) -> EventStream:
        """An :class:`EventStream` over the perf or ring buffer map ``name``.

        ``event_type`` (a numpy dtype, ctypes type or :class:`bpfnb.frames.Layout`) is the
        event's type; bcc objects know it from the program. ``perf_pages`` sizes each per-CPU
        perf ring. From now on a thread drains the rings into the stream (at most ``maxlen``
        rows are kept), so events are not lost while the notebook runs other code. Failed
        submits are counted (``stats.lost``/``stats.dropped``) where the program counts them:
        always in ``%%bpf`` cells, and in ELF objects built with ``<bpfnb/counted.h>``. The
        stream closes when the object does.
        """
        if self._closed:
            raise BpfError(f"{self.name}: closed, so it has no maps to stream")
        source = self.maps[name]
        check_stream_type(source.type, name)
        layout = as_layout(event_type) if event_type is not None else source_event_type(source)
        if layout is None:
            why = getattr(source, "event_type_note", "") or "the event type is unknown"
            raise BpfError(f"{name}: {why}; pass event_type= (a ctypes Structure or numpy dtype)")
        drops = None
        if self._drop_counters is not None and name in self._counted:
            drops = DropCounter(self._drop_counters.fd, name)
        stream = open_stream(
            source.fd, layout, name, maxlen=maxlen, drops=drops, perf_pages=perf_pages
        )
        self.on_close_weak(stream, "close")
        return stream

    # -- display ---------------------------------------------------------------------------------

    def _state(self) -> str:
        if self._closed:
            return "closed"
        return "attached" if self.attached else "loaded, detached"

    def _map_rows(self) -> list[tuple[str, str, str, str, str]]:
        return [(name, m.type_name, *_map_columns(m)) for name, m in self.maps.items()]

    def __repr__(self) -> str:
        lines = [f"BpfObject {self.name!r} ({self._state()})"]
        for prog in self.programs.values():
            where = ", ".join(prog.attach_points) or "not attached"
            lines.append(f"  program {prog.name} [{prog.type_name}] -> {where}")
        for name, kind, key, value, size in self._map_rows():
            lines.append(f"  map {name} [{kind}] {key} -> {value}, {size}")
        lines += [f"  pinned {name} at {path}" for name, path in self.pins.items()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        left = ' style="text-align: left"'  # notebooks right-align table cells by default
        prog_rows = "".join(
            f"<tr><td{left}><code>{esc(p.name)}</code></td><td{left}>{esc(p.type_name)}</td>"
            f"<td{left}>{esc(', '.join(p.attach_points) or 'not attached')}</td></tr>"
            for p in self.programs.values()
        )
        map_rows = "".join(
            "<tr>" + "".join(f"<td{left}>{esc(cell)}</td>" for cell in row) + "</tr>"
            for row in self._map_rows()
        )
        out = f"<div><b>BpfObject</b> <code>{esc(self.name)}</code> <i>({esc(self._state())})</i>"
        if prog_rows:
            heads = "".join(f"<th{left}>{h}</th>" for h in ("program", "type", "attached to"))
            out += f"<table><tr>{heads}</tr>{prog_rows}</table>"
        if map_rows:
            heads = "".join(f"<th{left}>{h}</th>" for h in ("map", "type", "key", "value", "size"))
            out += f"<table><tr>{heads}</tr>{map_rows}</table>"
        return out + "</div>"


M = TypeVar("M")


class Maps(dict[str, M]):
    """An object's maps by name: a missing name raises :class:`NoSuchMapError`."""

    def __init__(self, owner: str, maps: Mapping[str, M]) -> None:
        super().__init__(maps)
        self.owner = owner

    def __missing__(self, name: str) -> M:
        raise NoSuchMapError(f"{self.owner} has {not_found('map', name, list(self))}")


def _map_columns(m: Map) -> tuple[str, str, str]:
    # (key, value, size) as a reader wants them: an event buffer has events, not entries.
    if isinstance(m, EventMap):
        event = m.event_type.type_name if m.event_type is not None else "-"
        if m.type == MapType.RINGBUF:
            return "-", f"events: {event}", format_value(m.max_entries, "bytes") + " ring"
        return "-", f"events: {event}", f"a ring on each of {m.max_entries} CPUs"
    return m.key_type_name, m.value_type_name, f"max {m.max_entries}"


def source_event_type(source: Map) -> Any:
    # What the loader learnt of an event map's records (bcc does; ELF objects do not say).
    return source.event_type if isinstance(source, EventMap) else None


def _collect(action: Callable[[], None], errors: list[BaseException]) -> None:
    try:
        action()
    except Exception as err:  # keep closing the rest; report the first failure
        errors.append(err)


def _usdt_target(target: str) -> tuple[str, str, str]:
    # A section's "PATH:PROVIDER:NAME" (libbpf's usdt/ sections).
    path, _, probe = target.partition(":")
    provider, _, name = probe.partition(":")
    if not (path and provider and name) or ":" in name:
        raise AttachError(
            f"usdt target {target!r} is not 'PATH:PROVIDER:NAME': attach it with "
            "obj.attach_usdt(prog, path_or_lib, provider, name)"
        )
    return path, provider, name
