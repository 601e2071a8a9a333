"""Compile BPF C with libbcc into a :class:`BccObject`, attach it, and never leak it.

bcc's own ``BPF`` attaches everything while it is being constructed and registers itself with
``atexit``: a failure half-way leaves programs attached that nobody can reach, and a replaced
object is never collected. Here bcc is used with its auto-attach turned off; bpfnb attaches by
bcc's naming conventions itself, records every link, rolls back on failure, and drops bcc's
``atexit`` hold when the object closes.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes as ct
import errno
import os
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from bpfnb.bcc.capture import captured_output
from bpfnb.bcc.diagnostics import CELL_FILE, parse_diagnostics
from bpfnb.bcc.llvm_guard import LlvmFatalError, run_guarded
from bpfnb.bcc.loader import import_bcc
from bpfnb.bcc.preamble import PREAMBLE, PREAMBLE_MAPS
from bpfnb.errors import (
    AttachError,
    BpfError,
    CompileError,
    Diagnostic,
    KernelFeatureError,
    PrivilegeError,
    VerifierError,
)
from bpfnb.object import BpfObject, CallbackLink, Program
from bpfnb.sys import caps, features

__all__ = ["BccObject", "compile"]

# bcc's program type numbers (BPF.KPROBE, ...) and how the summary names them.
TYPE_NAMES = {
    1: "socket_filter",
    2: "kprobe",
    5: "tracepoint",
    6: "xdp",
    7: "perf_event",
    17: "raw_tracepoint",
    26: "tracing",
    29: "lsm",
}
_SOCKET_FILTER, _KPROBE, _TRACEPOINT, _PERF_EVENT, _RAW_TRACEPOINT = 1, 2, 5, 7, 17

_ERRNO_BY_TEXT = {os.strerror(code): code for code in errno.errorcode}


def _errno_of(err: BaseException) -> int:
    match = re.search(r": ([^:]+)$", str(err))
    return _ERRNO_BY_TEXT.get(match.group(1).strip(), 0) if match else 0


def _bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode()


class BccObject(BpfObject):
    """A :class:`BpfObject` compiled by libbcc. ``.bcc`` is bcc's own ``BPF`` object."""

    def __init__(self, name: str, bpf: Any, source: str) -> None:
        super().__init__(name, programs={}, maps={}, closers=[self._release_bcc], source=source)
        self.bcc = bpf
        self.maps = self._wrap_maps()

    # -- what the module holds -------------------------------------------------------------------

    @property
    def function_names(self) -> list[str]:
        """Every function the module compiled, loaded or not."""
        lib, module = import_bcc().lib, self.bcc.module
        return [
            lib.bpf_function_name(module, i).decode() for i in range(lib.bpf_num_functions(module))
        ]

    def table_names(self) -> list[str]:
        """Every map the module declares."""
        lib = _table_lib()
        module = self.bcc.module
        return [lib.bpf_table_name(module, i).decode() for i in range(lib.bpf_num_tables(module))]

    def _wrap_maps(self) -> dict[str, Any]:
        from bpfnb.maps import from_bcc

        # from_bcc, not bcc's own table: bcc cannot build one for a per-CPU map whose value is
        # not a multiple of 8 bytes.
        names = self.table_names()
        return {name: from_bcc(self.bcc, name) for name in names if name not in PREAMBLE_MAPS}

    # -- loading ---------------------------------------------------------------------------------

    def load(self, function: str, prog_type: int) -> Program:
        """Load ``function`` as a program of bcc type ``prog_type`` (once)."""
        if function in self.programs:
            return self.programs[function]
        if function not in self.function_names:
            raise BpfError(f"{self.name}: no function {function!r} in the program")
        with captured_output() as output:
            try:
                loaded = self.bcc.load_func(_bytes(function), prog_type)
            except Exception as err:
                failure: Exception | None = err
            else:
                failure = None
        if failure is not None:
            raise _load_error(function, prog_type, failure, output.text()) from failure
        program = Program(function, loaded.fd, TYPE_NAMES.get(prog_type, str(prog_type)))
        self.programs[function] = program
        return program

    # -- attaching -------------------------------------------------------------------------------

    def _program_and_target(self, first: str, second: str) -> tuple[str, str]:
        # Both (target, program), as bcc writes it, and (program, target) are accepted.
        functions = set(self.function_names)
        if first in functions and second not in functions:
            return first, second
        return second, first

    def attach_tracepoint(self, tracepoint: str, program: str) -> CallbackLink:
        """Attach ``program`` to tracepoint ``"category:name"``."""
        program, tracepoint = self._program_and_target(tracepoint, program)
        self.load(program, _TRACEPOINT)
        tp = _bytes(tracepoint)
        self._attach(lambda: self.bcc.attach_tracepoint(tp=tp, fn_name=_bytes(program)))
        return self._record(program, "tracepoint", tracepoint, self.bcc.detach_tracepoint, tp)

    def attach_raw_tracepoint(self, tracepoint: str, program: str) -> CallbackLink:
        """Attach ``program`` to raw tracepoint ``tracepoint`` (e.g. ``"sys_enter"``)."""
        program, tracepoint = self._program_and_target(tracepoint, program)
        self.load(program, _RAW_TRACEPOINT)
        tp = _bytes(tracepoint)
        self._attach(lambda: self.bcc.attach_raw_tracepoint(tp=tp, fn_name=_bytes(program)))
        return self._record(
            program, "raw_tracepoint", tracepoint, self.bcc.detach_raw_tracepoint, tp
        )

    def attach_kprobe(self, function: str, program: str, ret: bool = False) -> CallbackLink:
        """Attach ``program`` to kernel function ``function`` (a kretprobe when ``ret``)."""
        program, function = self._program_and_target(function, program)
        reason = features.kprobes_missing_reason()
        if reason:
            raise KernelFeatureError("kprobes", reason)
        self.load(program, _KPROBE)
        event = _bytes(function)
        attach = self.bcc.attach_kretprobe if ret else self.bcc.attach_kprobe
        detach = self.bcc.detach_kretprobe if ret else self.bcc.detach_kprobe
        self._attach(lambda: attach(event=event, fn_name=_bytes(program)))
        kind = "kretprobe" if ret else "kprobe"
        return self._record(program, kind, function, lambda: detach(event, _bytes(program)))

    def attach_uprobe(
        self, library_or_path: str, symbol: str, program: str, pid: int = -1, ret: bool = False
    ) -> CallbackLink:
        """Attach ``program`` to ``symbol`` in a binary or library (``"c"`` finds libc)."""
        if library_or_path in self.function_names and program not in self.function_names:
            library_or_path, symbol, program = symbol, program, library_or_path
        self.load(program, _KPROBE)
        name, sym = _bytes(library_or_path), _bytes(symbol)
        attach = self.bcc.attach_uretprobe if ret else self.bcc.attach_uprobe
        detach = self.bcc.detach_uretprobe if ret else self.bcc.detach_uprobe
        self._attach(lambda: attach(name=name, sym=sym, fn_name=_bytes(program), pid=pid))
        kind = "uretprobe" if ret else "uprobe"
        return self._record(
            program,
            kind,
            f"{library_or_path}:{symbol}",
            lambda: detach(name=name, sym=sym, pid=pid),
        )

    def attach_perf_event(
        self,
        program: str,
        ev_type: int,
        ev_config: int,
        sample_period: int = 0,
        sample_freq: int = 0,
        pid: int = -1,
        cpu: int = -1,
    ) -> CallbackLink:
        """Run ``program`` on a perf event (e.g. cpu-clock sampling) on every CPU or one."""
        self.load(program, _PERF_EVENT)
        self._attach(
            lambda: self.bcc.attach_perf_event(
                ev_type=ev_type,
                ev_config=ev_config,
                fn_name=_bytes(program),
                sample_period=sample_period,
                sample_freq=sample_freq,
                pid=pid,
                cpu=cpu,
            )
        )
        return self._record(
            program,
            "perf_event",
            f"type={ev_type},config={ev_config}",
            lambda: self.bcc.detach_perf_event(ev_type, ev_config),
        )

    def attach_raw_socket(self, program: str, interface: str) -> CallbackLink:
        """Attach socket filter ``program`` to a raw socket on ``interface`` (e.g. ``"lo"``)."""
        self.load(program, _SOCKET_FILTER)
        function = self.bcc.funcs[_bytes(program)]
        self._attach(lambda: self.bcc.attach_raw_socket(function, _bytes(interface)))
        socket_fd = function.sock
        return self._record(program, "socket", interface, lambda: os.close(socket_fd))

    def attach_kfunc(self, program: str, ret: bool = False) -> CallbackLink:
        """Attach a ``kfunc__``/``kretfunc__`` (fentry/fexit) program."""
        attach = self.bcc.attach_kretfunc if ret else self.bcc.attach_kfunc
        detach = self.bcc.detach_kretfunc if ret else self.bcc.detach_kfunc
        with captured_output() as output:
            try:
                attach(fn_name=_bytes(program))
            except Exception as err:
                failure: Exception | None = err
            else:
                failure = None
        if failure is not None:
            if caps.can_bpf() and "super-user" in str(failure):
                raise KernelFeatureError(
                    "fentry/fexit", features.tracing_refused_reason(errno.EPERM)
                ) from failure
            raise _load_error(program, 26, failure, output.text()) from failure
        loaded = self.bcc.funcs[_bytes(program)]
        self.programs[program] = Program(program, loaded.fd, "tracing")
        target = program.split("__", 1)[1]
        kind = "fexit" if ret else "fentry"
        return self._record(program, kind, target, lambda: detach(fn_name=_bytes(program)))

    def _attach(self, action: Any) -> None:
        with captured_output() as output:
            try:
                action()
            except Exception as err:
                failure: Exception | None = err
            else:
                failure = None
        if failure is not None:
            detail = output.text().strip()
            message = str(failure) + (f" ({detail.splitlines()[-1]})" if detail else "")
            raise AttachError(message, _errno_of(failure) or None) from failure

    def _record(
        self, program: str, kind: str, target: str, detach: Any, *args: Any
    ) -> CallbackLink:
        link = CallbackLink(kind, target, (lambda: detach(*args)) if args else detach)
        self.add_link(program, link)
        return link

    def autoattach(self) -> None:
        """Load and attach every function named by bcc's conventions."""
        for function in self.function_names:
            prefix, _, rest = function.partition("__")
            if prefix == "kprobe":
                self.attach_kprobe(self.bcc.fix_syscall_fnname(rest.encode()).decode(), function)
            elif prefix == "kretprobe":
                event = self.bcc.fix_syscall_fnname(rest.encode()).decode()
                self.attach_kprobe(event, function, ret=True)
            elif prefix == "tracepoint":
                self.attach_tracepoint(rest.replace("__", ":"), function)
            elif prefix == "raw_tracepoint":
                self.attach_raw_tracepoint(rest, function)
            elif prefix in ("kfunc", "kretfunc"):
                self.attach_kfunc(function, ret=prefix == "kretfunc")

    # -- detaching -------------------------------------------------------------------------------

    def detach(self) -> None:
        """Detach every program but keep programs and maps loaded (maps stay readable)."""
        for program in self.programs.values():
            for link in program.links:
                link.close()

    def _release_bcc(self) -> None:
        bpf = self.bcc
        try:
            bpf.cleanup()
        finally:
            # bcc registers these with atexit; unregistering lets the object be collected.
            atexit.unregister(bpf.cleanup)
            atexit.unregister(bpf.donothing)


_TABLE_LIB: Any = None


def _table_lib() -> Any:
    # bcc's bindings do not declare these two libbcc functions; without a declared restype the
    # returned pointer is truncated to an int. A private handle keeps bcc's own untouched.
    global _TABLE_LIB
    if _TABLE_LIB is None:
        lib = ct.CDLL(import_bcc().lib._name)
        lib.bpf_num_tables.restype = ct.c_size_t
        lib.bpf_num_tables.argtypes = [ct.c_void_p]
        lib.bpf_table_name.restype = ct.c_char_p
        lib.bpf_table_name.argtypes = [ct.c_void_p, ct.c_size_t]
        _TABLE_LIB = lib
    return _TABLE_LIB


def _load_error(function: str, prog_type: int, err: Exception, log: str) -> BpfError:
    if not caps.can_bpf():
        return PrivilegeError("CAP_BPF (or CAP_SYS_ADMIN)", f"loading program {function!r}")
    code = _errno_of(err) or errno.EINVAL
    if prog_type == 26 and code == errno.EPERM:
        return KernelFeatureError("fentry/fexit", features.tracing_refused_reason(code))
    # libbcc prints "bpf: Failed to load program: <error>" and then the verifier's log.
    log = re.sub(r"^bpf: Failed to load program: [^\n]*\n", "", log.strip() + "\n").strip()
    if log:
        return VerifierError(function, code, log)
    return BpfError(f"loading program {function!r} failed: {err}")


def _source_with_preamble(text: str) -> str:
    return f'{PREAMBLE}\n#line 1 "{CELL_FILE}"\n{text}'


def _cflags(defines: Mapping[str, Any] | None, cflags: Iterable[str] | None) -> list[str]:
    flags = [f"-D{key}={value}" for key, value in (defines or {}).items()]
    flags += list(cflags or [])
    flags.append("-Wno-macro-redefined")
    return flags


class _NoAutoloadFactory:
    """Creates bcc ``BPF`` objects with bcc's own auto-attach turned off."""

    _cls: Any = None

    @classmethod
    def cls(cls) -> Any:
        if cls._cls is None:
            bcc = import_bcc()

            class QuietBPF(bcc.BPF):  # type: ignore[name-defined]
                def _trace_autoload(self) -> None:
                    pass

            cls._cls = QuietBPF
        return cls._cls


def compile(
    text: str,
    defines: Mapping[str, Any] | None = None,
    cflags: Iterable[str] | None = None,
    attach: bool = True,
    name: str = "bpf",
) -> BccObject:
    """Compile BPF C with libbcc, load it, and (by default) auto-attach by bcc's conventions.

    Errors are typed: ``CompileError`` (with cell line numbers), ``VerifierError``,
    ``KernelFeatureError``, ``AttachError``, ``PrivilegeError``. On any error nothing stays
    attached or loaded.
    """
    if not caps.can_bpf():
        raise PrivilegeError("CAP_BPF (or CAP_SYS_ADMIN)", "compiling and loading BPF programs")
    cls = _NoAutoloadFactory.cls()
    bpf = cls.__new__(cls)
    flags = _cflags(defines, cflags)
    source = _source_with_preamble(text).encode()  # bcc wants bytes (it warns on str)
    with captured_output() as output:
        try:
            run_guarded(lambda: bpf.__init__(text=source, cflags=flags))
        except Exception as err:
            failure: Exception | None = err
        else:
            failure = None
    if isinstance(failure, LlvmFatalError):
        # The parked compile thread still uses this object: leave it, but drop bcc's hold.
        atexit.unregister(bpf.cleanup)
        diagnostic = Diagnostic(0, 0, "fatal error", f"LLVM gave up: {failure}")
        raise CompileError([diagnostic], output.text()) from None
    if failure is not None:
        atexit.unregister(bpf.cleanup)
        with contextlib.suppress(Exception):
            bpf.cleanup()
        diagnostics = parse_diagnostics(output.text(), text)
        raise CompileError(diagnostics, output.text() or str(failure)) from None
    obj = BccObject(name, bpf, text)
    if attach:
        try:
            obj.autoattach()
        except BaseException:
            obj.close()
            raise
    return obj


def run_for(obj: BccObject, seconds: float, progress: Any = None) -> None:
    """Keep ``obj`` attached for ``seconds`` (reporting seconds done), then detach it."""
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))
            if progress is not None:
                progress(seconds - left)
    finally:
        obj.detach()
