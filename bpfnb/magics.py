"""IPython magics: ``%%bpf``, ``%%bpftrace``, ``%bpf_list``, ``%bpf_close``, ``%bpf_trace``,
``%bpf_doctor``.

A thin front end: parse the line, call the library, display the result. The cell body is BPF C
and is passed on untouched; Python values enter only through ``-D`` on the magic line, which
IPython expands (``-D PID={os.getpid()}``).
"""

from __future__ import annotations

import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from bpfnb.bpftrace import REFRESH_MODES, BpftraceProgram
from bpfnb.bpftrace import start as start_bpftrace
from bpfnb.object import BpfObject
from bpfnb.progress import Progress
from bpfnb.session import session_for

__all__ = ["BpfMagics"]


def _defines(pairs: list[str]) -> dict[str, str]:
    defines = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key.isidentifier():
            raise UsageError(f"-D expects KEY=VALUE with a C identifier as KEY, got {pair!r}")
        defines[key] = value if sep else "1"
    return defines


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
    @argument("--cflags", default="", help='extra compiler flags, e.g. --cflags "-Wall"')
    @NO_ATTACH_OPTION
    @argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stay attached this long (with a progress bar), then detach; maps stay readable",
    )
    @argument(
        "--elf",
        action="store_true",
        help="compile with clang -target bpf into an ELF object and load it with bpfnb's loader",
    )
    @argument("--clang-flags", default="", help="extra clang flags for --elf cells")
    @CONSTANT_OPTION
    @argument("--help", action="store_true", help="show this help")
    def bpf(self, line: str, cell: str | None = None) -> BpfObject | None:
        """Compile the cell's BPF C with libbcc, load it and attach it by bcc's conventions.

        Functions named TRACEPOINT_PROBE, RAW_TRACEPOINT_PROBE, kprobe__*, kretprobe__*,
        tracepoint__*, raw_tracepoint__* and kfunc__* are attached automatically. Re-running a
        cell with the same NAME closes the previous object first.
        """
        args = parse_argstring(self.bpf, line)
        if args.help or not args.name or cell is None:
            print(self.bpf.parser.format_help())  # type: ignore[union-attr]
            return None
        if not args.name.isidentifier():
            raise UsageError(f"%%bpf NAME: {args.name!r} is not a Python identifier")
        defines = _defines(args.defines)
        cflags = shlex.split(args.cflags)
        attach = not args.no_attach

        def create() -> BpfObject:
            if args.elf:
                from bpfnb.link.elfcell import load_elf_cell, parse_constants

                flags = [f"-D{key}={value}" for key, value in defines.items()]
                return load_elf_cell(
                    cell,
                    name=args.name,
                    clang_flags=[*flags, *cflags, *shlex.split(args.clang_flags)],
                    constants=parse_constants(args.constants),
                    attach=attach,
                )
            from bpfnb.bcc import compile as bcc_compile

            return bcc_compile(cell, defines=defines, cflags=cflags, attach=attach, name=args.name)

        obj = self.session.replace(args.name, create)
        if args.duration and attach:
            self._run_for(obj, args.duration)
        return obj

    def _run_for(self, obj: Any, seconds: float) -> None:
        from bpfnb.bcc.program import run_for
        from bpfnb.bcc.trace import TracePipe

        uses_printk = "bpf_trace_printk" in obj.source or "bpf_printk" in obj.source
        with Progress(obj.name, seconds) as progress:
            if uses_printk:
                with TracePipe() as pipe:
                    pipe.follow(seconds, print)
                    obj.detach()
            else:
                run_for(obj, seconds, progress.update)

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
        args = parse_argstring(self.bpftrace, line)
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
        from bpfnb.link.elfcell import load_elf_cell, parse_constants

        args = parse_argstring(self.bpf_elf, line)
        if not args.name.isidentifier():
            raise UsageError(f"%bpf_elf NAME: {args.name!r} is not a Python identifier")
        constants = parse_constants(args.constants)
        return self.session.replace(
            args.name,
            lambda: load_elf_cell(
                path=args.path, name=args.name, constants=constants, attach=not args.no_attach
            ),
        )

    @line_magic
    @magic_arguments()
    @argument("name", nargs="?", help="the object whose bpf_trace_printk output to show")
    @argument("--duration", type=float, default=1.0, metavar="SECONDS")
    def bpf_trace(self, line: str) -> None:
        """Print ``bpf_trace_printk`` output for SECONDS (the trace pipe is shared by all)."""
        from bpfnb.bcc.trace import TracePipe

        args = parse_argstring(self.bpf_trace, line)
        with TracePipe() as pipe:
            pipe.follow(args.duration, print)

    @line_magic
    @magic_arguments()
    @argument("target", help="NAME.map_or_stream, e.g. counter.calls")
    @argument("--kind", default=None, help="log2, linear, table, rate or log")
    @argument("--interval", type=float, default=1.0, metavar="SECONDS")
    def bpf_show(self, line: str) -> Any:
        """Display a live view of a map (histogram or table) or a stream (event log)."""
        from bpfnb.widgets import show

        args = parse_argstring(self.bpf_show, line)
        name, _, part = args.target.partition(".")
        obj = self.session.objects.get(name)
        if obj is None or not part:
            raise UsageError(f"%bpf_show NAME.map: no live BPF object {name!r} with that map")
        # Re-running the cell replaces its view: stop and close the old one.
        old = self.session.views.pop(args.target, None)
        if old is not None:
            old.close()
        view = show(obj, part, kind=args.kind, interval=args.interval)
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
        args = parse_argstring(self.bpf_close, line)
        if args.all:
            self.session.close_all()
        elif not args.name:
            raise UsageError("%bpf_close NAME, or %bpf_close --all")
        elif not self.session.close(args.name):
            raise UsageError(f"no live BPF object named {args.name!r}")

    @line_magic
    def bpf_doctor(self, line: str) -> None:
        """Check what works on this machine (``--fix`` sets up what it safely can)."""
        from bpfnb.doctor import run

        report = run(apply_fix="--fix" in line.split())
        print(report.to_json() if "--json" in line.split() else report.to_text())
