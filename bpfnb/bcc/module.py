"""A module libbcc compiled: its functions loaded on demand, its maps, and its release.

bcc keeps owning what it made (program and map fds); :meth:`BccModule.release` frees them and
drops the hold bcc's ``BPF`` takes on itself through ``atexit``, so a replaced object can be
collected. bcc's own attach and detach functions are never called: attaching is
:mod:`bpfnb.link`'s job.
"""

from __future__ import annotations

import atexit
import ctypes as ct
import errno
import os
import re
from typing import Any

from bpfnb.bcc.bindings import import_bcc
from bpfnb.bcc.capture import captured_output
from bpfnb.bcc.conventions import convention
from bpfnb.bcc.preamble import PREAMBLE_MAPS
from bpfnb.bcc.tables import from_bcc
from bpfnb.errors import BpfError, PrivilegeError, VerifierError
from bpfnb.maps import Map
from bpfnb.object import Program
from bpfnb.sys import caps, features
from bpfnb.sys.constants import ProgType

__all__ = ["BccModule"]

_ERRNO_BY_TEXT = {os.strerror(code): code for code in errno.errorcode}
_TRACING_TYPES = (ProgType.TRACING, ProgType.LSM)


def _bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode()


def _errno_of(err: BaseException) -> int:
    # bcc raises plain Exceptions whose text ends in strerror(errno), except for EPERM.
    if "super-user" in str(err):
        return errno.EPERM
    match = re.search(r": ([^:]+)$", str(err))
    return _ERRNO_BY_TEXT.get(match.group(1).strip(), 0) if match else 0


class BccModule:
    """What libbcc compiled (bcc's ``BPF`` object is ``.bpf``), as a program loader."""

    def __init__(self, bpf: Any, source: str = "") -> None:
        self.bpf = bpf
        self.source = source  # the cell, whose line numbers the verifier's log uses

    def function_names(self) -> list[str]:
        """Every function the module compiled, loaded or not."""
        lib, module = import_bcc().lib, self.bpf.module
        return [
            lib.bpf_function_name(module, i).decode() for i in range(lib.bpf_num_functions(module))
        ]

    def table_names(self) -> list[str]:
        """Every map the module declares."""
        lib, module = _table_lib(), self.bpf.module
        return [lib.bpf_table_name(module, i).decode() for i in range(lib.bpf_num_tables(module))]

    def maps(self) -> dict[str, Map]:
        """The module's maps by name, without bpfnb's own."""
        return {n: from_bcc(self.bpf, n) for n in self.table_names() if n not in PREAMBLE_MAPS}

    def hidden_map(self, name: str) -> Map | None:
        """One of bpfnb's own maps (see :mod:`bpfnb.bcc.preamble`), or None."""
        return from_bcc(self.bpf, name) if name in self.table_names() else None

    def load(self, name: str, prog_type: ProgType) -> Program:
        """Load function ``name`` as a program of ``prog_type`` (libbcc relocates its maps)."""
        with captured_output() as output:
            try:
                loaded = self.bpf.load_func(_bytes(name), int(prog_type))
            except Exception as err:
                failure: Exception | None = err
            else:
                failure = None
        if failure is not None:
            raise _load_error(name, prog_type, failure, output.text(), self.source) from failure
        found = convention(name)
        kind, target = (found[1], found[2]) if found and found[0] == prog_type else ("", "")
        return Program(name, loaded.fd, prog_type, kind, target, section=name)

    def load_conventional(self) -> dict[str, Program]:
        """Load every function whose name says where it attaches (``kprobe__...``)."""
        programs = {}
        for name in self.function_names():
            found = convention(name)
            if found is not None:
                programs[name] = self.load(name, found[0])
        return programs

    def release(self) -> None:
        """Free bcc's programs and maps and drop its ``atexit`` hold."""
        bpf = self.bpf
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


def _load_error(
    function: str, prog_type: ProgType, err: Exception, log: str, cell: str
) -> Exception:
    if not caps.can_bpf():
        return PrivilegeError("CAP_BPF (or CAP_SYS_ADMIN)", f"loading program {function!r}")
    code = _errno_of(err) or errno.EINVAL
    if prog_type in _TRACING_TYPES:
        refused = features.tracing_load_error(OSError(code, os.strerror(code)), function)
        if not isinstance(refused, OSError):
            return refused
    # libbcc prints "bpf: Failed to load program: <error>" and then the verifier's log.
    log = re.sub(r"^bpf: Failed to load program: [^\n]*\n", "", log.strip() + "\n").strip()
    if log:
        return VerifierError(function, code, log, cell=cell)
    return BpfError(f"loading program {function!r} failed: {err}")
