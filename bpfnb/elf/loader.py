"""Load an :class:`ObjectSpec` into the kernel: BTF, maps, global data, then programs.

The result is the same :class:`bpfnb.BpfObject` a ``%%bpf`` cell returns; its maps are
:class:`bpfnb.Map`\\ s, its programs carry their ELF ``section`` (which says where
``obj.attach()`` attaches them) and ``obj.spec`` keeps the spec.
"""

from __future__ import annotations

import contextlib
import ctypes as ct
import dataclasses
import errno
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bpfnb.elf import btf as btf_module
from bpfnb.elf import btf_fixup, pinning
from bpfnb.elf.btf_layout import raw_layout
from bpfnb.elf.core import apply_core_relocations
from bpfnb.elf.kconfig import KCONFIG, kconfig_data, running_version
from bpfnb.elf.ksyms import KernelBtfs, KernelSymbol, apply_externs, resolve_externs
from bpfnb.elf.reader import read
from bpfnb.elf.refusals import map_refused, program_refused, verifier_refused
from bpfnb.elf.relocate import apply_fds
from bpfnb.elf.spec import KERNEL_VERSION_CURRENT, MapSpec, ObjectSpec, ProgramSpec, encode_value
from bpfnb.elf.struct_ops import StructOpsLayout, lay_out
from bpfnb.errors import ElfError, KernelFeatureError, MapError, VerifierError
from bpfnb.events import DROP_COUNTER_MAP
from bpfnb.link import BPF_F_LINK, StructOps
from bpfnb.maps import EventMap, Map, open_map
from bpfnb.object import BpfObject, Program
from bpfnb.sys import bpf
from bpfnb.sys.constants import MapType, ProgType
from bpfnb.sys.cpus import possible_cpus
from bpfnb.sys.fd import FD
from bpfnb.sys.mounts import BPFFS

__all__ = ["load", "load_elf"]

BPF_F_RDONLY_PROG = 1 << 7
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.]")


def load(
    spec_or_path: ObjectSpec | str | os.PathLike[str] | bytes,
    constants: Mapping[str, object] | None = None,
    pin_root: str | None = None,
    pin_paths: Mapping[str, str] | None = None,
    pin: bool = True,
    programs: Iterable[str] | None = None,
) -> BpfObject:
    """Create the maps and load the programs of an object (a path, bytes or a spec).

    ``programs`` names the programs to load; by default those whose ``autoload`` is on (all,
    but for ``SEC("?...")`` ones and those turned off with
    ``spec.programs[name].autoload = False``), as libbpf loads them. Every map is created.
    ``constants`` sets ``const volatile`` globals by name before load. The spec itself is not
    changed; set map sizes there first (``spec.maps[name].max_entries = n``).

    Maps whose definition asks for pinning (gobpf's PIN_GLOBAL_NS/PIN_CUSTOM_NS,
    libbpf's LIBBPF_PIN_BY_NAME) are pinned as gobpf and libbpf pin them, under
    ``/sys/fs/bpf``, or under ``pin_root`` when given; ``pin=False`` pins nothing (see
    :mod:`bpfnb.elf.pinning`; ``pin_paths`` gives PIN_CUSTOM_NS maps their paths). An existing
    pin is reused; ``obj.close(unpin=True)`` removes the object's pins.
    """
    spec = spec_or_path if isinstance(spec_or_path, ObjectSpec) else read(spec_or_path)
    root = (pin_root or BPFFS) if pin else None
    return _Loader(spec, dict(constants or {}), root, pin_paths, _selected(spec, programs)).load()


def _selected(spec: ObjectSpec, programs: Iterable[str] | None) -> list[ProgramSpec]:
    if programs is None:
        return [p for p in spec.programs.values() if p.autoload]
    names = [programs] if isinstance(programs, str) else list(programs)
    unknown = [n for n in names if n not in spec.programs]
    if unknown:
        known = ", ".join(spec.programs) or "none"
        raise KeyError(f"no program {unknown[0]!r} in {spec.path} (its programs: {known})")
    return [p for name, p in spec.programs.items() if name in names]


def load_elf(
    path: str | os.PathLike[str] | bytes | ObjectSpec,
    constants: Mapping[str, object] | None = None,
    attach: bool = True,
    pin_root: str | None = None,
    pin_paths: Mapping[str, str] | None = None,
    name: str | None = None,
    pin: bool = True,
    programs: Iterable[str] | None = None,
) -> BpfObject:
    """Load a clang-built BPF object; with ``attach``, attach each program by its section.

    ``name`` names the object (default: the file's name); the rest is as for :func:`load`.
    """
    obj = load(
        path,
        constants=constants,
        pin_root=pin_root,
        pin_paths=pin_paths,
        pin=pin,
        programs=programs,
    )
    if name is not None:
        obj.name = name
    if attach:
        try:
            obj.attach()
        except BaseException:
            obj.close()
            raise
    return obj


def kernel_name(name: str) -> str:
    """A name the kernel accepts for a map or program: [A-Za-z0-9_.], at most 15 bytes."""
    return _NAME_CHARS.sub("_", name)[:15]


def pin_path(
    spec: MapSpec, pin_root: str, pin_paths: Mapping[str, str] | None = None
) -> str | None:
    """Where a map's ``pinning`` asks for it to live under ``pin_root``, or None.

    gobpf: PIN_GLOBAL_NS (2) → ``ROOT/NAMESPACE/globals/NAME``, PIN_CUSTOM_NS (3) →
    ``ROOT/<pin_paths[NAME]>``, PIN_OBJECT_NS (1) refused. libbpf ``.maps``:
    LIBBPF_PIN_BY_NAME (1) → ``ROOT/NAME``. See :func:`bpfnb.elf.pinning.map_pin_path`.
    """
    return pinning.map_pin_path(spec, pin_root, pin_paths)


def running_kernel_version() -> int:
    return running_version()


class _Loader:
    def __init__(
        self,
        spec: ObjectSpec,
        constants: dict[str, object],
        pin_root: str | None,
        pin_paths: Mapping[str, str] | None = None,
        selected: list[ProgramSpec] | None = None,
    ):
        self.spec = spec
        self.selected = list(spec.programs.values()) if selected is None else selected
        self.constants = constants
        self.pin_root = pin_root
        self.pin_paths = pin_paths
        self.pins: dict[str, str] = {}
        self.fds: list[FD] = []  # closed on failure
        self.map_fds: dict[str, FD] = {}
        self.btf_fd: FD | None = None
        self.layouts: dict[str, StructOpsLayout] = {}  # struct_ops maps, by name
        # struct_ops programs: (kernel struct's BTF id, member index) of the slot each fills.
        self.struct_ops_targets: dict[str, tuple[int, int]] = {}
        self.btf_error = ""
        self.object_name = os.path.splitext(os.path.basename(spec.path))[0] or "object"

    def load(self) -> BpfObject:
        kernel = KernelBtfs()
        try:
            data = self._data_with_constants()
            self._load_btf()
            self._lay_out_struct_ops(kernel)
            self._create_maps(data)
            resolved = self._resolve_externs(kernel)
            programs = self._load_programs(resolved, kernel)
            self._fill_program_arrays(programs)
            struct_ops = self._struct_ops(programs)
            maps = self._wrap_maps()
        except BaseException:
            for fd in reversed(self.fds):
                with contextlib.suppress(OSError):
                    fd.close()
            raise
        finally:
            kernel.close()  # the programs hold what they use of modules' BTF
        # Closers run last-in first-out, after the links and maps: programs, then BTF.
        closers: list[Callable[[], None]] = []
        if self.btf_fd is not None:
            closers.append(self.btf_fd.close)
        closers += [p.owner.close for p in programs.values()]
        drop_counters = maps.pop(DROP_COUNTER_MAP, None)
        # <bpfnb/counted.h> counts the failed submits of every event map it sees.
        counted = [
            n for n, m in maps.items() if drop_counters is not None and isinstance(m, EventMap)
        ]
        obj = BpfObject(
            self.object_name,
            programs,
            maps,
            drop_counters=drop_counters,
            counted=counted,
            closers=closers,
            pins=self.pins,
            spec=self.spec,
            struct_ops=struct_ops,
        )
        obj.btf_error = self.btf_error  # type: ignore[attr-defined]
        return obj

    def _own(self, fd: FD) -> FD:
        self.fds.append(fd)
        return fd

    # -- BTF -------------------------------------------------------------------------------------

    def _load_btf(self) -> None:
        spec = self.spec
        if spec.btf is None:
            return
        raw = btf_fixup.for_kernel(
            spec.btf, spec.section_sizes, spec.symbol_offsets, spec.hidden_functions
        )
        try:
            self.btf_fd = self._own(bpf.btf_load(raw))
        except OSError as err:
            # Maps and programs load without BTF too; only names and line info are lost.
            self.btf_error = str(err)

    # -- maps ------------------------------------------------------------------------------------

    def _data_with_constants(self) -> dict[str, bytes]:
        spec = self.spec
        data = {name: m.data or bytes(m.value_size) for name, m in spec.data_maps.items()}
        kconfig = spec.maps.get(KCONFIG)
        if kconfig is not None and spec.btf is not None:
            data[KCONFIG] = kconfig_data(
                kconfig.variables, spec.kconfig_weak, spec.btf, kconfig.value_size
            )
        readonly = {n: v for n, v in spec.variables.items() if n in spec.constants}
        for name, value in self.constants.items():
            var = readonly.get(name)
            if var is None:
                known = ", ".join(sorted(readonly)) or "none"
                raise KeyError(f"no constant {name!r} in .rodata (constants: {known})")
            data[var.map] = encode_value(var, value, data[var.map], spec.byteorder)
        return data

    def _create(self, m: MapSpec, inner_fd: int = 0) -> FD:
        max_entries = m.max_entries
        if m.type == MapType.PERF_EVENT_ARRAY and max_entries == 0:
            max_entries = len(possible_cpus())
        flags = m.flags | (BPF_F_RDONLY_PROG if m.readonly else 0)
        args: dict[str, Any] = {
            "map_type": m.type,
            "key_size": m.key_size,
            "value_size": m.value_size,
            "max_entries": max_entries,
            "flags": flags,
            "name": kernel_name(m.name),
            "inner_map_fd": inner_fd,
            "map_extra": m.map_extra,
        }
        layout = self.layouts.get(m.name)
        if layout is not None:
            args["value_size"] = len(layout.value)
            args["btf_vmlinux_value_type_id"] = layout.value_type_id
        btf_ids = self._btf_ids(m)
        try:
            if btf_ids is not None and self.btf_fd is not None:
                try:
                    with_btf = {**args, **btf_ids, "btf_fd": self.btf_fd.fileno()}
                    return self._own(bpf.map_create(**with_btf))
                except OSError as err:
                    if err.errno in (errno.EPERM, errno.EACCES):
                        raise
                    # Retried without BTF: an old kernel may not take these types for this map.
            return self._own(bpf.map_create(**args))
        except OSError as err:
            missing = self._missing_map_type(m.type) if err.errno == errno.EINVAL else ""
            if missing:
                raise KernelFeatureError(f"map {m.name!r}", missing) from err
            shown = m if layout is None else dataclasses.replace(m, value_size=len(layout.value))
            raise map_refused(shown, max_entries, err) from err

    def _missing_map_type(self, map_type: int) -> str:
        # EINVAL has many causes; the kernel's BTF lists the map types it was built with (enum
        # bpf_map_type), so a type newer than the kernel can be named as the reason.
        try:
            known = KernelBtfs().vmlinux("map types").find("bpf_map_type", "ENUM")
        except KernelFeatureError:
            return ""
        if known is None or any(member.value == map_type for member in known.members):
            return ""
        try:
            name = f"BPF_MAP_TYPE_{MapType(map_type).name}"
        except ValueError:
            name = f"map type {map_type}"
        return f"this kernel has no {name} (its BTF's enum bpf_map_type lacks it)"

    def _btf_ids(self, m: MapSpec) -> dict[str, int] | None:
        spec = self.spec
        if spec.btf is None:
            return None
        if m.layout == "data":
            datasec = spec.btf.find_id(m.section, "DATASEC")
            return {"btf_key_type_id": 0, "btf_value_type_id": datasec} if datasec else None
        if m.layout == "struct_ops":
            # Its value type is the kernel's (btf_vmlinux_value_type_id), not the object's.
            return {"btf_key_type_id": 0, "btf_value_type_id": 0}
        if m.key_type_id or m.value_type_id:
            if m.type in (MapType.RINGBUF, MapType.PERF_EVENT_ARRAY, MapType.STACK_TRACE):
                return None
            return {"btf_key_type_id": m.key_type_id, "btf_value_type_id": m.value_type_id}
        return None

    def _create_maps(self, data: dict[str, bytes]) -> None:
        pending: list[tuple[MapSpec, FD]] = []
        for m in self.spec.maps.values():
            fd = self._pinned(m)
            if fd is None:
                if m.inner is not None:
                    template = self._create(m.inner)
                    try:
                        fd = self._create(m, template.fileno())
                    finally:
                        template.close()
                else:
                    fd = self._create(m)
                self._pin(m, fd)
            self.map_fds[m.name] = fd
            if m.layout == "data":
                self._fill(m, fd, data[m.name])
            if m.initial_slots:
                pending.append((m, fd))
        for m, fd in pending:
            if m.type == MapType.PROG_ARRAY:
                continue  # filled with programs once they are loaded
            for slot, name in m.initial_slots.items():
                target = self.map_fds.get(name)
                if target is None:
                    raise KeyError(f"map {m.name!r} slot {slot} names unknown map {name!r}")
                self._set_slot(m, fd, slot, target, f"map {name!r}")

    def _set_slot(self, m: MapSpec, fd: FD, slot: int, target: FD, what: str) -> None:
        try:
            bpf.map_update(fd.fileno(), ct.c_uint32(slot), ct.c_uint32(target.fileno()))
        except OSError as err:
            error = MapError(f"map {m.name!r}: cannot put {what} in slot {slot}: {err.strerror}")
            error.errno = err.errno
            raise error from err

    def _fill_program_arrays(self, programs: dict[str, Program]) -> None:
        # libbpf fills a program array's declared slots (.values = { [0] = &prog }) after load.
        for m in self.spec.maps.values():
            if m.type != MapType.PROG_ARRAY or not m.initial_slots:
                continue
            fd = self.map_fds[m.name]
            for slot, name in m.initial_slots.items():
                prog = programs.get(name)
                if prog is None:
                    reason = (
                        "is not loaded (its autoload is off)"
                        if name in self.spec.programs
                        else "is not a program of this object"
                    )
                    raise MapError(
                        f"map {m.name!r} slot {slot} holds program {name!r}, which {reason}: "
                        f"load it too, or clear spec.maps[{m.name!r}].initial_slots[{slot}]"
                    )
                self._set_slot(m, fd, slot, prog.owner, f"program {name!r}")

    def _fill(self, m: MapSpec, fd: FD, value: bytes) -> None:
        key = ct.c_uint32(0)
        buf = ct.create_string_buffer(value, len(value))
        try:
            bpf.map_update(fd.fileno(), key, buf)
            if m.readonly:
                # Frozen before the programs load, so the verifier may treat it as constant.
                bpf.map_freeze(fd.fileno())
        except OSError as err:
            error = MapError(f"map {m.name!r}: cannot set its initial value: {err.strerror}")
            error.errno = err.errno
            raise error from err

    def _pinned(self, m: MapSpec) -> FD | None:
        # An existing pin that matches the definition is reused: two loads share the map.
        if self.pin_root is None:
            return None
        path = pin_path(m, self.pin_root, self.pin_paths)
        if path is None:
            return None
        self.pins[m.name] = path
        fd = pinning.open_pinned(path, m)
        return None if fd is None else self._own(fd)

    def _pin(self, m: MapSpec, fd: FD) -> None:
        path = self.pins.get(m.name)
        if path is not None:
            pinning.pin(fd.fileno(), path)

    def _lay_out_struct_ops(self, kernel: KernelBtfs) -> None:
        for m in self.spec.maps.values():
            if m.layout != "struct_ops":
                continue
            layout = self.layouts[m.name] = lay_out(m, kernel)
            for program, member in layout.members.items():
                other = self.struct_ops_targets.setdefault(program, (layout.kernel_type_id, member))
                if other != (layout.kernel_type_id, member):
                    raise ElfError(
                        f"program {program!r} fills two different struct_ops slots", m.section
                    )

    def _struct_ops(self, programs: dict[str, Program]) -> dict[str, StructOps]:
        fds = {name: p.fd for name, p in programs.items()}
        return {
            name: StructOps(
                name,
                self.map_fds[name].fileno(),
                layout.with_fds(fds),
                bool(self.spec.maps[name].flags & BPF_F_LINK),
                tuple(layout.slots.values()),
            )
            for name, layout in self.layouts.items()
        }

    def _wrap_maps(self) -> dict[str, Map]:
        maps: dict[str, Map] = {}
        for name, m in self.spec.maps.items():
            fd = self.map_fds[name]
            max_entries = m.max_entries
            if m.type == MapType.PERF_EVENT_ARRAY and max_entries == 0:
                max_entries = int(bpf.map_info(fd.fileno()).max_entries)
            layout = self.layouts.get(name)
            maps[name] = open_map(
                fd,
                name=name,
                map_type=m.type,
                key=m.key_layout,
                # A struct_ops map's value is the kernel's struct, not the object's.
                value=m.value_layout if layout is None else raw_layout(len(layout.value)),
                max_entries=max_entries,
                flags=m.flags,
                owns_fd=True,
            )
        return maps

    # -- programs --------------------------------------------------------------------------------

    def _resolve_externs(self, kernel: KernelBtfs) -> dict[str, KernelSymbol]:
        spec = self.spec
        used = {ref.name for prog in self.selected for ref in prog.externs}
        missing = sorted(used - set(spec.externs))
        if missing:
            raise ElfError(
                f"extern {missing[0]!r} is not a __ksym or __kconfig extern the object's BTF "
                "describes (compile with clang -g, and declare kernel symbols __ksym)",
                ".BTF",
            )
        if not spec.externs or spec.btf is None:
            return {}
        return resolve_externs(spec.externs, spec.btf, kernel)

    def _load_programs(
        self, resolved: dict[str, KernelSymbol], kernel: KernelBtfs
    ) -> dict[str, Program]:
        fds = {name: fd.fileno() for name, fd in self.map_fds.items()}
        programs: dict[str, Program] = {}
        for prog in self.selected:
            fd = self._load_program(prog, fds, resolved, kernel)
            programs[prog.name] = Program(
                name=prog.name,
                fd=fd.fileno(),
                type=ProgType(prog.type),
                attach_kind=prog.attach_kind,
                attach_target=prog.attach_target,
                section=prog.section,
                expected_attach_type=prog.expected_attach_type,
                owner=fd,
                spec=prog,
            )
        return programs

    def _load_program(
        self,
        prog: ProgramSpec,
        map_fds: dict[str, int],
        resolved: dict[str, KernelSymbol],
        kernel: KernelBtfs,
    ) -> FD:
        code = prog.instructions
        if prog.core_relocations:
            code = self._core(prog, kernel)
        if prog.externs:
            code = apply_externs(code, prog.externs, resolved)
        insns = apply_fds(prog, map_fds, code=code)
        version = prog.kernel_version
        if version == KERNEL_VERSION_CURRENT or (prog.type == ProgType.KPROBE and not version):
            version = running_kernel_version()
        args: dict[str, Any] = {
            "prog_type": prog.type,
            "insns": insns,
            "license": prog.license or "",
            "name": kernel_name(prog.name),
            "expected_attach_type": prog.expected_attach_type,
            "kern_version": version,
            "prog_flags": prog.prog_flags,
            "fd_array": kernel.fd_array or None,
        }
        if prog.attach_btf:
            args["attach_btf_id"] = self._attach_btf_id(prog, kernel)
        if prog.type == ProgType.STRUCT_OPS:
            target = self.struct_ops_targets.get(prog.name)
            if target is None:
                raise ElfError(
                    f"struct_ops program {prog.name!r} is in no struct_ops map, so nothing says "
                    'which operation it implements (set it in a SEC(".struct_ops") variable, '
                    f"or turn its autoload off)",
                    prog.section,
                )
            args["attach_btf_id"], args["expected_attach_type"] = target
        with_btf = dict(args)
        if self.btf_fd is not None and prog.func_info:
            with_btf.update(
                prog_btf_fd=self.btf_fd.fileno(),
                func_info=btf_module.encode_func_info(prog.func_info),
                func_info_rec_size=8,
                line_info=btf_module.encode_line_info(prog.line_info),
                line_info_rec_size=16 if prog.line_info else 0,
            )
        try:
            try:
                return self._own(bpf.prog_load(**with_btf))
            except OSError as err:
                if with_btf is args or err.errno in (errno.EPERM, errno.EACCES):
                    raise
                # The kernel may refuse the BTF info (an old kernel); the program itself may not
                # need it.
                return self._own(bpf.prog_load(**args))
        except VerifierError as err:
            raise verifier_refused(prog, err) or self._verifier_error(prog, err, resolved) from None
        except OSError as err:
            raise program_refused(prog, err) from err

    def _core(self, prog: ProgramSpec, kernel: KernelBtfs) -> bytes:
        assert prog.btf is not None  # CO-RE relocations come from .BTF.ext, which needs .BTF
        target = kernel.vmlinux(f"CO-RE relocations of {prog.name!r}")
        return apply_core_relocations(
            prog.instructions, prog.core_relocations, prog.btf, target, prog.name
        )

    def _attach_btf_id(self, prog: ProgramSpec, kernel: KernelBtfs) -> int:
        # fentry, tp_btf, lsm, iter...: the load names the kernel function, tracepoint, hook or
        # iterator by its BTF id.
        what = f"{prog.attach_kind} {prog.attach_target}".strip()
        if prog.type == ProgType.EXT:
            raise KernelFeatureError(
                f"section {prog.section!r}",
                "freplace programs replace a function of another loaded program, which bpfnb's "
                "ELF loader cannot name: load it with libbpf and bpf_program__set_attach_target()",
            )
        if not prog.attach_target:
            raise KernelFeatureError(
                f"section {prog.section!r}",
                f"a {prog.attach_kind} program names its target in its section "
                f"({prog.attach_kind}/TARGET)",
            )
        name, kind = prog.btf_target()
        found = kernel.find(name, kind, what)
        if found is None:
            raise KernelFeatureError(
                what, f"the kernel's BTF has no {kind.lower()} {name!r}, nor has any module's"
            )
        _, type_id, module = found
        if module is not None:
            raise KernelFeatureError(
                what, f"{name!r} is in module {module.name}: bpfnb attaches to vmlinux only"
            )
        return type_id

    def _verifier_error(
        self, prog: ProgramSpec, err: VerifierError, resolved: dict[str, KernelSymbol]
    ) -> VerifierError:
        source = ""
        failing = err.failing_instruction
        head = failing.split(":", 1)[0].strip()
        if head.isdigit():
            insn = int(head)
            info = prog.source_line(insn)
            if info is not None:
                source = f"{os.path.basename(info.file)}:{info.line}: {info.source}"
            absent = [
                r.name
                for r in prog.externs
                if r.insn == insn and r.call and not resolved[r.name].found
            ]
            if absent:
                source += (
                    f" (a call of kfunc {absent[0]!r}, which this kernel lacks: guard it with "
                    "bpf_ksym_exists())"
                )
        return VerifierError(prog.name, err.errno, err.log, source.strip())
