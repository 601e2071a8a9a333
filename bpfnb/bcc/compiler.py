"""Compile BPF C with libbcc into a :class:`bpfnb.BpfObject`, and never leak it.

bcc's own ``BPF`` attaches everything while it is being constructed and registers itself with
``atexit``: a failure half-way leaves programs attached that nobody can reach, and a replaced
object is never collected. Here bcc only compiles and loads (its auto-attach turned off); the
object attaches through :mod:`bpfnb.link` by bcc's naming conventions, rolls back on failure,
and drops bcc's ``atexit`` hold when it closes.
"""

from __future__ import annotations

import atexit
import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from bpfnb.bcc.bindings import import_bcc
from bpfnb.bcc.capture import captured_output
from bpfnb.bcc.llvm_guard import LlvmFatalError, run_guarded
from bpfnb.bcc.module import BccModule
from bpfnb.bcc.preamble import PREAMBLE
from bpfnb.bcc.submits import Insertions, counted_submits
from bpfnb.bcc.usdt import UsdtSpec, attach_targets, check_functions, readarg_text, resolve
from bpfnb.diagnostics import CELL_FILE, parse_diagnostics
from bpfnb.errors import CompileError, Diagnostic, PrivilegeError
from bpfnb.events import DROP_COUNTER_MAP
from bpfnb.object import BpfObject
from bpfnb.sys import caps

__all__ = ["compile"]


def _source_with_preamble(text: str, prefix: str = "") -> str:
    return f"{prefix}{PREAMBLE}\n{_anchored(text)}"


def _anchored(text: str) -> str:
    # A #line directive before each line of the cell (except inside a continued line) keeps
    # clang's line numbers, and the BTF line info the verifier prints, those of the cell,
    # whatever bcc inserts before a line (a TRACEPOINT_PROBE's args struct, several lines).
    out = []
    continued = False
    for number, line in enumerate(text.split("\n"), 1):
        if not continued:
            out.append(f'#line {number} "{CELL_FILE}"')
        out.append(line)
        continued = line.endswith("\\")
    return "\n".join(out)


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


def _build(
    text: str, counted_text: str, insertions: Insertions, flags: list[str], prefix: str = ""
) -> tuple[Any, list[Diagnostic]]:
    # bcc's BPF object for the cell, compiled on a guarded thread (see llvm_guard), and the
    # warnings clang gave about the cell. ``prefix`` is C text compiled before it (bcc's USDT
    # argument readers).
    cls = _NoAutoloadFactory.cls()
    bpf = cls.__new__(cls)
    source = _source_with_preamble(counted_text, prefix).encode()  # bcc wants bytes
    with captured_output() as output:
        try:
            run_guarded(lambda: bpf.__init__(text=source, cflags=flags))
        except BaseException as err:
            failure: BaseException | None = err
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
        if not isinstance(failure, Exception):
            raise failure  # an interrupt: nothing of the cell is kept
    diagnostics = parse_diagnostics(
        output.text(), text, compiled=counted_text, column=insertions.original_column
    )
    if failure is not None:
        raise CompileError(diagnostics, output.text() or str(failure)) from None
    return bpf, [d for d in diagnostics if d.severity == "warning" and d.line > 0]


def compile(
    text: str,
    defines: Mapping[str, Any] | None = None,
    cflags: Iterable[str] | None = None,
    attach: bool = True,
    name: str = "bpf",
    count_submits: bool = True,
    usdt: Iterable[UsdtSpec] = (),
    usdt_pid: int | None = None,
) -> BpfObject:
    """Compile BPF C with libbcc, load it, and (by default) attach by bcc's conventions.

    Functions named by bcc's conventions (``kprobe__``, ``kretprobe__``, ``tracepoint__`` /
    ``TRACEPOINT_PROBE``, ``raw_tracepoint__`` / ``RAW_TRACEPOINT_PROBE``, ``kfunc__``,
    ``kretfunc__``, ``lsm__``) are loaded now and attached unless ``attach=False``; any other
    function is loaded when an ``attach_*`` call names it.

    Every ``NAME.perf_submit``, ``perf_submit_skb``, ``ringbuf_output`` and ``ringbuf_reserve``
    call is wrapped so that a failure is counted (see :mod:`bpfnb.bcc.submits`), and
    ``obj.stream(NAME).stats`` accounts for every event; ``count_submits=False`` compiles the
    text as it is (the stats then say the events are not counted).

    ``usdt`` names USDT probes whose arguments a function of the text reads with
    ``bpf_usdt_readarg(N, ctx, &v)``: ``("/usr/bin/python3.11", "python:function__entry",
    "on_entry")`` or ``"PATH:PROVIDER:NAME=FUNC"``. bcc writes the code that reads them; FUNC is
    attached (unless ``attach=False``) at every site of the probe with
    :meth:`BpfObject.attach_usdt`. ``usdt_pid`` traces one process: needed for probes with a
    semaphore, and enough to find a probe without a PATH (``"PROVIDER:NAME=FUNC"``).

    Errors are typed: ``CompileError`` (with cell line numbers), ``VerifierError``,
    ``KernelFeatureError``, ``AttachError``, ``PrivilegeError``. On any error nothing stays
    attached or loaded.
    """
    if not caps.can_bpf():
        raise PrivilegeError("CAP_BPF (or CAP_SYS_ADMIN)", "compiling and loading BPF programs")
    targets = resolve(usdt, usdt_pid)
    prefix = readarg_text(targets, usdt_pid) if targets else ""
    counted_text, counted, insertions = counted_submits(text, count_submits)
    bpf, warnings = _build(text, counted_text, insertions, _cflags(defines, cflags), prefix)
    module = BccModule(bpf, text)
    try:
        check_functions(targets, module.function_names())
        obj = BpfObject(
            name,
            module.load_conventional(),
            module.maps(),
            loader=module,
            drop_counters=module.hidden_map(DROP_COUNTER_MAP),
            counted=counted,
            closers=[module.release],
            source=text,
            warnings=warnings,
        )
    except BaseException:
        module.release()
        raise
    if attach:
        try:
            obj.attach()
            attach_targets(obj, targets, usdt_pid)
        except BaseException:
            obj.close()
            raise
    return obj
