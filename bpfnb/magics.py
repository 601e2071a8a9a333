"""IPython magics: ``%%bpf``, ``%%bpftrace``, ``%bpf_elf``, ``%bpf_show``, ``%bpf_trace``,
``%bpf_list``, ``%bpf_close``, ``%bpf_doctor``.

A thin front end: parse the line, call the library, display the result. The cell body is BPF C
and is passed on untouched; Python values enter only through ``-D`` on the magic line, which
IPython expands (``-D PID={os.getpid()}``). Misuse gets a ``UsageError`` that says what to do.
"""

from __future__ import annotations

import html
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from bpfnb import elf
from bpfnb.bcc.usdt import UsdtProbe, as_probes
from bpfnb.bpftrace import REFRESH_MODES, BpftraceProgram
from bpfnb.bpftrace import start as start_bpftrace
from bpfnb.cells import CellSpec, load_cell
from bpfnb.cluster import ClusterObject, run_cell
from bpfnb.doctor import run as run_doctor
from bpfnb.elf.compiler import parse_constants
from bpfnb.errors import Diagnostic, not_found
from bpfnb.object import BpfObject
from bpfnb.progress import Progress
from bpfnb.run import follow_trace, run_for
from bpfnb.session import session_for
from bpfnb.widgets import show

__all__ = ["BpfMagics", "CompileWarnings"]

#: One line for each magic, shown by ``%bpf --help`` and ``%%bpf?``.
MAGICS = (
    ("%%bpf NAME [options]", "BPF C in the cell: compiled, loaded, attached, bound to NAME"),
    ("%%bpftrace NAME [PARAMS]", "a bpftrace program in the cell; its maps become DataFrames"),
    ("%bpf_elf NAME PATH", "load a clang-built object file, attach it by section, bind it to NAME"),
    ("%bpf_show NAME.MAP", "a live view of a map (histogram, table, rate) or an event stream"),
    ("%bpf_trace [--duration S]", "print the bpf_trace_printk lines written from now on"),
    ("%bpf_list", "the live BPF objects of this notebook"),
    ("%bpf_close NAME | --all", "detach and free an object (or all of them)"),
    ("%bpf_doctor [--fix] [--json]", "what works on this machine, and set up what can be"),
)
CELL_HELP = """\
%%bpf NAME [options]
  The cell is BPF C. bpfnb compiles it with libbcc (or with clang and its own ELF loader, with
  --elf), loads it, attaches each function whose name says where (TRACEPOINT_PROBE,
  RAW_TRACEPOINT_PROBE, kprobe__*, kretprobe__*, tracepoint__*, raw_tracepoint__*, kfunc__*;
  ELF sections such as tracepoint/CAT/NAME), each --usdt function at its probe's sites, and
  binds the BpfObject to NAME. Re-running the cell replaces NAME once the new version is
  loaded and attached; if it fails, the old one stays. Errors point at the cell's own line
  numbers.

  Example:
    %%bpf counter -D TID={threading.get_native_id()}
    BPF_ARRAY(calls, u64, 1);
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
        if ((u32)bpf_get_current_pid_tgid() == TID)
            calls.increment(0);
        return 0;
    }

  With --cluster the cell runs on every engine of an ipyparallel cluster (each engine as root
  with bpfnb installed) and NAME reads all of them: NAME.maps["calls"].to_frame() has host and
  engine columns. {engine}, {pid} and {host} in -D values are each engine's own (write
  {{pid}} when the notebook has a variable named pid, which IPython would put there first):
    %%bpf counter --cluster -D PID={pid}
"""


def _help() -> str:
    parser = BpfMagics.bpf.parser  # type: ignore[union-attr]  # set by @magic_arguments
    options = parser.format_help().split("options:", 1)[1]
    magics = "\n".join(f"  {usage:<30}{what}" for usage, what in MAGICS)
    return f"{CELL_HELP}\noptions:{options.rstrip()}\n\nbpfnb's magics:\n{magics}\n"


def _parse(magic: Any, line: str, usage: str) -> Any:
    # The magic's arguments, or a UsageError that shows the right usage and where to look.
    try:
        return parse_argstring(magic, line)
    except UsageError as err:
        raise UsageError(f"{err}\nusage: {usage} (%bpf --help lists the options)") from None


class CompileWarnings:
    """What the compiler warned about a cell that did compile, shown once under it."""

    #: More warnings than this are folded into a closed <details> element.
    OPEN = 3

    def __init__(self, name: str, warnings: list[Diagnostic]) -> None:
        self.name = name
        self.warnings = warnings

    def __repr__(self) -> str:
        head = f"{self.name}: {len(self.warnings)} compiler warning(s)"
        return "\n".join([head, *(w.render() for w in self.warnings)])

    def _repr_html_(self) -> str:
        items = "".join(f"<pre>{html.escape(w.render())}</pre>" for w in self.warnings)
        head = f"<b>{html.escape(self.name)}</b>: {len(self.warnings)} compiler warning(s)"
        if len(self.warnings) > self.OPEN:
            return f"<details><summary>{head}</summary>{items}</details>"
        return f"<div>{head}{items}</div>"


def _defines(pairs: list[str]) -> dict[str, str]:
    defines = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key.isidentifier():
            raise UsageError(f"-D expects KEY=VALUE with a C identifier as KEY, got {pair!r}")
        defines[key] = value if sep else "1"
    return defines


def _usdt_probes(specs: list[str], pid: int | None, elf_cell: bool) -> list[UsdtProbe]:
    if elf_cell and (specs or pid is not None):
        raise UsageError(
            "--usdt reads probe arguments with bcc's code, so it is for bcc cells; in an --elf "
            "cell, attach with NAME.attach_usdt(FUNC, PATH, PROVIDER, PROBE)"
        )
    if pid is not None and not specs:
        raise UsageError(
            "--usdt-pid says which process the --usdt probes are traced in: add --usdt"
        )
    try:
        return as_probes(specs)
    except ValueError as err:
        raise UsageError(f"--usdt {err}") from None


CONSTANT_OPTION = argument(
    "--constant",
    dest="constants",
    action="append",
    default=[],
    metavar="NAME=VALUE",
    help="set a const volatile global of an ELF object before load (repeatable)",
)
NO_ATTACH_OPTION = argument(
    "--no-attach", action="store_true", help="load the programs without attaching"
)


@magics_class
class BpfMagics(Magics):
    """The bpfnb magics; registered by ``%load_ext bpfnb``."""

    @property
    def session(self) -> Any:
        return session_for(self.shell)

    @line_cell_magic
    @magic_arguments()
    @argument("name", nargs="?", help="the Python name the BpfObject is bound to")
    @argument(
        "-D",
        dest="defines",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="define a C macro (repeatable); {expr} on the magic line is expanded by IPython",
    )
    @argument("--cflags", default="", help='extra compiler flags, e.g. --cflags="-Wall -O2"')
    @NO_ATTACH_OPTION
    @argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stay attached this long (with a progress bar), then detach; maps stay readable; "
        "an interrupt detaches at once",
    )
    @argument(
        "--elf",
        action="store_true",
        help="compile with clang -target bpf into an ELF object and load it with bpfnb's loader",
    )
    @argument(
        "--clang-flags", default="", help='extra clang flags for --elf cells (--clang-flags="-O1")'
    )
    @CONSTANT_OPTION
    @argument(
        "--usdt",
        action="append",
        default=[],
        metavar="PATH:PROVIDER:NAME=FUNC",
        help="run FUNC at every site of a USDT probe, its arguments read with "
        "bpf_usdt_readarg(N, ctx, &v) (repeatable); PATH is a path or a program or library name, "
        "left out (PROVIDER:NAME=FUNC) with --usdt-pid to search the process's files",
    )
    @argument(
        "--usdt-pid",
        type=int,
        default=None,
        metavar="PID",
        help="trace the --usdt probes in this process only (needed for probes with a semaphore)",
    )
    @argument(
        "--cluster",
        action="store_true",
        help="run the cell on every engine of an ipyparallel cluster; {engine}, {pid} and {host} "
        "in -D and --constant values become each engine's own",
    )
    @argument(
        "--engines",
        default=None,
        metavar="EXPR",
        help="with --cluster: the engines, as a Client, view (rc[:2]) or Cluster in the "
        "namespace (default: the running cluster of the default profile)",
    )
    @argument("--help", action="store_true", help="show this help")
    def bpf(self, line: str, cell: str | None = None) -> BpfObject | ClusterObject | None:
        """Compile the cell's BPF C with libbcc, load it and attach it by bcc's conventions.

        Functions named TRACEPOINT_PROBE, RAW_TRACEPOINT_PROBE, kprobe__*, kretprobe__*,
        tracepoint__*, raw_tracepoint__* and kfunc__* are attached automatically. Re-running a
        cell with the same NAME replaces the previous object once the new one is loaded and
        attached; when the new one fails, the previous one stays.
        """
        args = _parse(self.bpf, line, "%%bpf NAME [options]")
        if args.help:
            print(_help())
            return None
        if cell is None:
            raise UsageError(
                "%bpf is a cell magic: write %%bpf NAME on the first line of a cell, and the "
                "BPF C below it (%bpf --help shows the options)"
            )
        if not args.name:
            raise UsageError(
                "%%bpf needs a NAME to bind the object to: %%bpf NAME [options] "
                "(%bpf --help shows the options)"
            )
        if not args.name.isidentifier():
            raise UsageError(f"%%bpf NAME: {args.name!r} is not a Python identifier")
        spec = CellSpec(
            name=args.name,
            source=cell,
            defines=_defines(args.defines),
            cflags=args.cflags,
            attach=not args.no_attach,
            elf=args.elf,
            clang_flags=args.clang_flags,
            constants=tuple(args.constants),
            usdt=tuple(_usdt_probes(args.usdt, args.usdt_pid, args.elf)),
            usdt_pid=args.usdt_pid,
        )
        if args.cluster or args.engines:
            if args.usdt_pid is not None:
                raise UsageError(
                    "--usdt-pid names a process on this host; a --cluster cell's --usdt probes "
                    "are traced in every process of each engine's host (name them by PATH)"
                )
            engines = self._engines(args.engines)
            obj = self.session.replace(args.name, lambda: run_cell(spec, engines))
            if obj.failures:
                display(obj.failures)
        else:
            obj = self.session.replace(args.name, lambda: load_cell(spec))
        if obj.warnings:
            display(CompileWarnings(obj.name, obj.warnings))
        if args.duration and spec.attach:
            uses_printk = "bpf_trace_printk" in obj.source or "bpf_printk" in obj.source
            # An engine's trace pipe is its host's: only a local cell prints it here.
            run_for(obj, args.duration, trace=uses_printk and not isinstance(obj, ClusterObject))
        return obj

    def _engines(self, expression: str | None) -> Any:
        # --engines EXPR: an ipyparallel Client, view or Cluster from the user's namespace.
        if expression is None:
            return None
        namespace = self.shell.user_ns if self.shell is not None else {}
        try:
            return eval(expression, namespace)  # the user's own expression, as %timeit's
        except Exception as err:
            raise UsageError(
                f"--engines {expression}: {type(err).__name__}: {err} (name an ipyparallel "
                "Client, view or Cluster, e.g. --engines rc or --engines rc[:2])"
            ) from None

    @cell_magic
    @magic_arguments()
    @argument("name", help="the Python name the program is bound to")
    @argument("params", nargs="*", help="bpftrace's positional parameters ($1, $2, ...)")
    @argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="run this long (with a progress bar), then stop; the final maps stay readable",
    )
    @argument(
        "--refresh",
        choices=REFRESH_MODES,
        default="signal",
        help="read running maps by SIGUSR1 (signal) or from the program's own print()s",
    )
    def bpftrace(self, line: str, cell: str) -> BpftraceProgram:
        """Run the cell's bpftrace program (``bpftrace -f json``) and print its output.

        Without --duration the cell returns once the probes are attached and bpftrace keeps
        running: NAME.maps["@x"].to_frame() reads a map now, NAME.output holds what it prints
        later (NAME.follow(SECONDS) prints it as it comes), and %bpf_close NAME (or a re-run)
        stops it. Interrupting the kernel stops bpftrace too.
        """
        args = _parse(self.bpftrace, line, "%%bpftrace NAME [PARAMS...] [--duration SECONDS]")
        if not args.name.isidentifier():
            raise UsageError(f"%%bpftrace NAME: {args.name!r} is not a Python identifier")
        obj = self.session.replace(
            args.name,
            lambda: start_bpftrace(cell, args.name, args.params, refresh=args.refresh),
        )
        if args.duration:
            try:
                with Progress(obj.name, args.duration) as progress:
                    obj.run_for(args.duration, progress=progress.update)
            finally:
                obj.close()  # also when interrupted before the run started
        return obj

    @line_magic
    @magic_arguments()
    @argument("name", help="the Python name the BpfObject is bound to")
    @argument("path", help="a clang-built BPF object file")
    @CONSTANT_OPTION
    @NO_ATTACH_OPTION
    def bpf_elf(self, line: str) -> BpfObject:
        """Load an existing BPF ELF object, attach it by section name, and bind it to NAME."""
        args = _parse(self.bpf_elf, line, "%bpf_elf NAME PATH [--constant NAME=VALUE]")
        if not args.name.isidentifier():
            raise UsageError(f"%bpf_elf NAME: {args.name!r} is not a Python identifier")
        constants = parse_constants(args.constants)
        return self.session.replace(
            args.name,
            lambda: elf.load_elf(
                args.path, name=args.name, constants=constants, attach=not args.no_attach
            ),
        )

    @line_magic
    @magic_arguments()
    @argument("name", nargs="?", help="the object whose bpf_trace_printk output to show")
    @argument("--duration", type=float, default=1.0, metavar="SECONDS")
    def bpf_trace(self, line: str) -> None:
        """Print the ``bpf_trace_printk`` lines written in the next SECONDS (by any program:
        the kernel does not say which wrote a line)."""
        args = _parse(self.bpf_trace, line, "%bpf_trace [--duration SECONDS]")
        follow_trace(args.duration)

    @line_magic
    @magic_arguments()
    @argument("target", help="NAME.map_or_stream, e.g. counter.calls")
    @argument("--kind", default=None, help="log2, linear, table, rate or log")
    @argument("--unit", default=None, help="histogram values in ns, us, ms or bytes")
    @argument("--interval", type=float, default=1.0, metavar="SECONDS")
    def bpf_show(self, line: str) -> Any:
        """Display a live view of a map (histogram or table) or a stream (event log)."""
        args = _parse(self.bpf_show, line, "%bpf_show NAME.MAP [--kind KIND] [--unit UNIT]")
        name, _, part = args.target.partition(".")
        live = {n: o for n, o in self.session.objects.items() if not o.closed}
        if name not in live:
            raise UsageError(f"%bpf_show: {not_found('live BPF object', name, list(live))}")
        obj = live[name]
        if not part:
            choices = ", ".join(f"{name}.{m}" for m in obj.maps) or "none: it has no maps"
            raise UsageError(f"%bpf_show NAME.MAP: say which map of {name} to show ({choices})")
        if part not in obj.maps:
            raise UsageError(f"%bpf_show: {name} has {not_found('map', part, list(obj.maps))}")
        # Re-running the cell replaces its view: stop and close the old one.
        old = self.session.views.pop(args.target, None)
        if old is not None:
            old.close()
        view = show(obj, part, kind=args.kind, interval=args.interval, unit=args.unit)
        self.session.views[args.target] = view
        return view

    @line_magic
    def bpf_list(self, line: str) -> Any:
        """Show the live BPF objects of this session."""
        return self.session.listing()

    @line_magic
    @magic_arguments()
    @argument("name", nargs="?", help="the object to close")
    @argument("--all", action="store_true", help="close every object of this session")
    def bpf_close(self, line: str) -> None:
        """Detach and close a BPF object (or all of them)."""
        args = _parse(self.bpf_close, line, "%bpf_close NAME | --all")
        if args.all:
            self.session.close_all()
        elif not args.name:
            raise UsageError("%bpf_close NAME, or %bpf_close --all")
        elif not self.session.close(args.name):
            live = [n for n, o in self.session.objects.items() if not o.closed]
            raise UsageError(f"%bpf_close: {not_found('live BPF object', args.name, live)}")

    @line_magic
    def bpf_doctor(self, line: str) -> None:
        """Check what works on this machine (``--fix`` sets up what it safely can)."""
        report = run_doctor(apply_fix="--fix" in line.split())
        print(report.to_json() if "--json" in line.split() else report.to_text())


# ``%%bpf?`` shows the magic's docstring: the cell magic's own help, not %bpf's argparse usage.
BpfMagics.bpf.parser.prog = "%%bpf"  # type: ignore[union-attr]
BpfMagics.bpf.__doc__ = _help()
