"""One function per ``bpf()`` command, taking and returning plain values and owned fds.

Failures raise ``OSError(errno)``, except where a typed error says more: a verifier rejection
(``VerifierError`` with the log) and a missing capability (``PrivilegeError``).
"""

from __future__ import annotations

import ctypes as ct
import errno
from collections.abc import Iterator
from typing import Any

from bpfnb.errors import PrivilegeError, VerifierError
from bpfnb.sys import caps
from bpfnb.sys.attrs import (
    BtfInfo,
    BtfLoadAttr,
    GetIdAttr,
    InfoByFdAttr,
    IterCreateAttr,
    LinkCreateAttr,
    MapBatchAttr,
    MapCreateAttr,
    MapElemAttr,
    MapInfo,
    ObjPinAttr,
    ProgAttachAttr,
    ProgInfo,
    ProgLoadAttr,
    RawTracepointOpenAttr,
)
from bpfnb.sys.constants import Cmd
from bpfnb.sys.fd import FD
from bpfnb.sys.syscall import bpf

__all__ = [
    "BatchResult",
    "btf_get_fd_by_id",
    "btf_ids",
    "btf_info",
    "btf_load",
    "iter_create",
    "link_create",
    "map_create",
    "map_delete",
    "map_freeze",
    "map_get_fd_by_id",
    "map_get_next_key",
    "map_info",
    "map_lookup",
    "map_lookup_and_delete",
    "map_lookup_batch",
    "map_update",
    "map_update_batch",
    "obj_get",
    "obj_pin",
    "pointer",
    "prog_attach",
    "prog_detach",
    "prog_get_fd_by_id",
    "prog_ids",
    "prog_info",
    "prog_load",
    "raw_tracepoint_open",
]

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_F_LOCK = 4

_VERIFIER_LOG_SIZE = 1 << 20
_VERIFIER_LOG_MAX = 1 << 28


def pointer(buf: Any) -> int:
    """The address of a buffer: an int address, a ctypes object, a numpy array or a bytearray."""
    if buf is None:
        return 0
    if isinstance(buf, int):
        return buf
    if isinstance(buf, bytearray):
        return ct.addressof((ct.c_char * len(buf)).from_buffer(buf)) if buf else 0
    data = getattr(buf, "ctypes", None)
    if data is not None:  # numpy array
        return int(data.data)
    return ct.addressof(buf)


def _raise_privilege(action: str, err: OSError) -> None:
    if err.errno in (errno.EPERM, errno.EACCES) and not caps.can_bpf():
        raise PrivilegeError("CAP_BPF (or CAP_SYS_ADMIN)", action) from err


def _fd(cmd: Cmd, attr: ct.Structure, action: str) -> FD:
    try:
        return FD(bpf(cmd, attr))
    except OSError as err:
        _raise_privilege(action, err)
        raise


# -- maps ----------------------------------------------------------------------------------------


def map_create(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    flags: int = 0,
    name: str = "",
    inner_map_fd: int = 0,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    map_extra: int = 0,
    btf_vmlinux_value_type_id: int = 0,
) -> FD:
    """Create a map (BPF_MAP_CREATE) and return its fd; a struct_ops map names its kernel value
    type in ``btf_vmlinux_value_type_id``."""
    attr = MapCreateAttr(
        map_type=map_type,
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        map_flags=flags,
        inner_map_fd=inner_map_fd,
        map_name=name.encode()[:15],
        btf_fd=btf_fd,
        btf_key_type_id=btf_key_type_id,
        btf_value_type_id=btf_value_type_id,
        btf_vmlinux_value_type_id=btf_vmlinux_value_type_id,
        map_extra=map_extra,
    )
    return _fd(Cmd.MAP_CREATE, attr, f"creating map {name!r}")


def _found(command: int, attr: Any) -> bool:
    # Run a command that answers ENOENT for "no such key" (or "no next one"): False then.
    try:
        bpf(command, attr)
    except OSError as err:
        if err.errno == errno.ENOENT:
            return False
        raise
    return True


def map_lookup(map_fd: int, key: Any, value: Any, flags: int = 0) -> bool:
    """Copy the value of ``key`` into ``value``; False when the key is absent."""
    attr = MapElemAttr(map_fd=map_fd, key=pointer(key), value=pointer(value), flags=flags)
    return _found(Cmd.MAP_LOOKUP_ELEM, attr)


def map_lookup_and_delete(map_fd: int, key: Any, value: Any) -> bool:
    """Copy the value of ``key`` into ``value`` and delete it (a queue or stack map's pop, with
    ``key`` None); False when there is none."""
    attr = MapElemAttr(map_fd=map_fd, key=pointer(key), value=pointer(value))
    return _found(Cmd.MAP_LOOKUP_AND_DELETE_ELEM, attr)


def map_update(map_fd: int, key: Any, value: Any, flags: int = BPF_ANY) -> None:
    """Insert or replace ``key`` (BPF_MAP_UPDATE_ELEM)."""
    attr = MapElemAttr(map_fd=map_fd, key=pointer(key), value=pointer(value), flags=flags)
    bpf(Cmd.MAP_UPDATE_ELEM, attr)


def map_delete(map_fd: int, key: Any) -> bool:
    """Delete ``key``; False when it was absent."""
    attr = MapElemAttr(map_fd=map_fd, key=pointer(key))
    return _found(Cmd.MAP_DELETE_ELEM, attr)


def map_get_next_key(map_fd: int, key: Any, next_key: Any) -> bool:
    """Write the key after ``key`` (the first key when ``key`` is None); False at the end."""
    attr = MapElemAttr(map_fd=map_fd, key=pointer(key), value=pointer(next_key))
    return _found(Cmd.MAP_GET_NEXT_KEY, attr)


class BatchResult:
    """What one BPF_MAP_LOOKUP_BATCH call returned: entries copied, and whether the map is done."""

    __slots__ = ("count", "done")

    def __init__(self, count: int, done: bool) -> None:
        self.count = count
        self.done = done


def map_lookup_batch(
    map_fd: int,
    in_batch: Any,
    out_batch: Any,
    keys: Any,
    values: Any,
    count: int,
    delete: bool = False,
    elem_flags: int = 0,
) -> BatchResult:
    """Copy up to ``count`` entries into ``keys``/``values`` (BPF_MAP_LOOKUP[_AND_DELETE]_BATCH).

    ``in_batch`` is None for the first call; afterwards pass the previous ``out_batch``.
    ENOENT means the walk reached the end (possibly with entries copied); ENOSPC, that one hash
    bucket holds more entries than ``count`` (the caller grows its buffers).
    """
    attr = MapBatchAttr(
        in_batch=pointer(in_batch),
        out_batch=pointer(out_batch),
        keys=pointer(keys),
        values=pointer(values),
        count=count,
        map_fd=map_fd,
        elem_flags=elem_flags,
    )
    cmd = Cmd.MAP_LOOKUP_AND_DELETE_BATCH if delete else Cmd.MAP_LOOKUP_BATCH
    done = not _found(cmd, attr)  # ENOENT: this batch holds the last keys
    return BatchResult(attr.count, done)


def map_update_batch(map_fd: int, keys: Any, values: Any, count: int, flags: int = 0) -> int:
    """Write ``count`` entries from ``keys``/``values`` (BPF_MAP_UPDATE_BATCH).

    Returns how many were written; the kernel may stop early and the caller goes on from there.
    """
    attr = MapBatchAttr(
        keys=pointer(keys), values=pointer(values), count=count, map_fd=map_fd, elem_flags=flags
    )
    bpf(Cmd.MAP_UPDATE_BATCH, attr)
    return int(attr.count)


def map_freeze(map_fd: int) -> None:
    """Make the map read-only for user space (BPF_MAP_FREEZE)."""
    bpf(Cmd.MAP_FREEZE, MapElemAttr(map_fd=map_fd))


def map_info(fd: int) -> MapInfo:
    """``struct bpf_map_info`` for a map fd."""
    info = MapInfo()
    bpf(Cmd.OBJ_GET_INFO_BY_FD, InfoByFdAttr(fd, ct.sizeof(info), ct.addressof(info)))
    return info


def map_get_fd_by_id(map_id: int) -> FD:
    """Open a map by its kernel id."""
    return _fd(Cmd.MAP_GET_FD_BY_ID, GetIdAttr(start_id=map_id), f"opening map id {map_id}")


# -- programs ------------------------------------------------------------------------------------


def prog_load(
    prog_type: int,
    insns: bytes,
    license: str = "GPL",
    name: str = "",
    expected_attach_type: int = 0,
    kern_version: int = 0,
    prog_flags: int = 0,
    prog_btf_fd: int = 0,
    attach_btf_id: int = 0,
    attach_prog_fd: int = 0,
    func_info: bytes = b"",
    func_info_rec_size: int = 0,
    line_info: bytes = b"",
    line_info_rec_size: int = 0,
    fd_array: list[int] | None = None,
) -> FD:
    """Load a program (BPF_PROG_LOAD); a rejection raises ``VerifierError`` with the log.

    ``fd_array`` holds the fds that kfunc calls into modules name by index (their ``off``).
    The first attempt runs without a log, as that is faster; only a failure is retried with one.
    """
    insn_buf = ct.create_string_buffer(insns, len(insns))
    fds = (ct.c_int32 * len(fd_array))(*fd_array) if fd_array else None
    license_buf = ct.create_string_buffer(license.encode())
    func_buf = ct.create_string_buffer(func_info, len(func_info)) if func_info else None
    line_buf = ct.create_string_buffer(line_info, len(line_info)) if line_info else None
    attr = ProgLoadAttr(
        prog_type=prog_type,
        insn_cnt=len(insns) // 8,
        insns=ct.addressof(insn_buf),
        license=ct.addressof(license_buf),
        kern_version=kern_version,
        prog_flags=prog_flags,
        prog_name=name.encode()[:15],
        expected_attach_type=expected_attach_type,
        prog_btf_fd=prog_btf_fd,
        attach_btf_id=attach_btf_id,
        attach_prog_fd=attach_prog_fd,
    )
    if func_buf is not None:
        attr.func_info = ct.addressof(func_buf)
        attr.func_info_rec_size = func_info_rec_size
        attr.func_info_cnt = len(func_info) // func_info_rec_size
    if fds is not None:
        attr.fd_array = ct.addressof(fds)
    if line_buf is not None:
        attr.line_info = ct.addressof(line_buf)
        attr.line_info_rec_size = line_info_rec_size
        attr.line_info_cnt = len(line_info) // line_info_rec_size
    try:
        return FD(bpf(Cmd.PROG_LOAD, attr))
    except OSError as err:
        _raise_privilege(f"loading program {name!r}", err)
        first_error = err
    log_size = _VERIFIER_LOG_SIZE
    while True:
        log = ct.create_string_buffer(log_size)
        attr.log_level, attr.log_size, attr.log_buf = 1, log_size, ct.addressof(log)
        try:
            return FD(bpf(Cmd.PROG_LOAD, attr))
        except OSError as err:
            if err.errno == errno.ENOSPC and log_size < _VERIFIER_LOG_MAX:
                log_size *= 4
                continue
            text = log.value.decode(errors="replace")
            if text.strip():
                raise VerifierError(name, err.errno or first_error.errno or 0, text) from err
            raise first_error from None


def prog_info(fd: int) -> ProgInfo:
    """``struct bpf_prog_info`` for a program fd."""
    info = ProgInfo()
    bpf(Cmd.OBJ_GET_INFO_BY_FD, InfoByFdAttr(fd, ct.sizeof(info), ct.addressof(info)))
    return info


def prog_ids() -> Iterator[int]:
    """The ids of every program loaded in the kernel."""
    return _ids(Cmd.PROG_GET_NEXT_ID)


def _ids(command: int) -> Iterator[int]:
    # Walk one of the kernel's id tables (BPF_*_GET_NEXT_ID) from the start; ENOENT ends it.
    attr = GetIdAttr(start_id=0)
    while _found(command, attr):
        yield attr.next_id
        attr.start_id = attr.next_id


def prog_get_fd_by_id(prog_id: int) -> FD:
    """Open a program by its kernel id."""
    attr = GetIdAttr(start_id=prog_id)
    return _fd(Cmd.PROG_GET_FD_BY_ID, attr, f"opening program id {prog_id}")


# -- attaching -----------------------------------------------------------------------------------


def raw_tracepoint_open(name: str | None, prog_fd: int) -> FD:
    """Attach a raw tracepoint program to ``name``, or (``None``) a tracing program (fentry,
    fexit, lsm...) where its load named; closing the returned fd detaches it."""
    name_buf = ct.create_string_buffer(name.encode()) if name is not None else None
    attr = RawTracepointOpenAttr(
        name=ct.addressof(name_buf) if name_buf is not None else 0, prog_fd=prog_fd
    )
    what = f"raw tracepoint {name!r}" if name is not None else "a tracing program"
    return _fd(Cmd.RAW_TRACEPOINT_OPEN, attr, f"attaching {what}")


def link_create(
    prog_fd: int, target_fd: int, attach_type: int, flags: int = 0, extra: tuple[int, ...] = ()
) -> FD:
    """Create a BPF link (BPF_LINK_CREATE); closing the returned fd detaches it."""
    attr = LinkCreateAttr(prog_fd=prog_fd, target_fd=target_fd, attach_type=attach_type)
    attr.flags = flags
    for i, word in enumerate(extra):
        attr.extra[i] = word
    return _fd(Cmd.LINK_CREATE, attr, "creating a BPF link")


def prog_attach(prog_fd: int, target_fd: int, attach_type: int, flags: int = 0) -> None:
    """Attach with BPF_PROG_ATTACH (cgroups, sockmaps); undo with :func:`prog_detach`."""
    attr = ProgAttachAttr(
        target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type, attach_flags=flags
    )
    bpf(Cmd.PROG_ATTACH, attr)


def prog_detach(prog_fd: int, target_fd: int, attach_type: int) -> None:
    """Undo :func:`prog_attach`."""
    attr = ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type)
    bpf(Cmd.PROG_DETACH, attr)


# -- objects -------------------------------------------------------------------------------------


def obj_pin(fd: int, path: str) -> None:
    """Pin a map, program or link at ``path`` on a bpffs."""
    path_buf = ct.create_string_buffer(path.encode())
    bpf(Cmd.OBJ_PIN, ObjPinAttr(pathname=ct.addressof(path_buf), bpf_fd=fd))


def obj_get(path: str, flags: int = 0) -> FD:
    """Open what is pinned at ``path``."""
    path_buf = ct.create_string_buffer(path.encode())
    attr = ObjPinAttr(pathname=ct.addressof(path_buf), file_flags=flags)
    return _fd(Cmd.OBJ_GET, attr, f"opening pinned object {path!r}")


def btf_ids() -> Iterator[int]:
    """The ids of every BTF object in the kernel (vmlinux's, modules', programs')."""
    return _ids(Cmd.BTF_GET_NEXT_ID)


def btf_get_fd_by_id(btf_id: int) -> FD:
    """Open a BTF object by its kernel id."""
    return _fd(Cmd.BTF_GET_FD_BY_ID, GetIdAttr(start_id=btf_id), f"opening BTF id {btf_id}")


def btf_info(fd: int) -> tuple[BtfInfo, str]:
    """``struct bpf_btf_info`` of a BTF fd, and its name (``"vmlinux"``, a module's name, or
    ``""`` for a program's BTF)."""
    info = BtfInfo()
    name = ct.create_string_buffer(64)
    info.name, info.name_len = ct.addressof(name), len(name)
    bpf(Cmd.OBJ_GET_INFO_BY_FD, InfoByFdAttr(fd, ct.sizeof(info), ct.addressof(info)))
    return info, name.value.decode(errors="replace")


def iter_create(link_fd: int) -> FD:
    """An fd that reads one pass of a BPF iterator (BPF_ITER_CREATE) from its link."""
    return _fd(Cmd.ITER_CREATE, IterCreateAttr(link_fd=link_fd), "creating an iterator")


def btf_load(data: bytes) -> FD:
    """Load BTF (BPF_BTF_LOAD); a rejection raises ``OSError`` whose text holds the kernel's log."""
    buf = ct.create_string_buffer(data, len(data))
    attr = BtfLoadAttr(btf=ct.addressof(buf), btf_size=len(data))
    try:
        return _fd(Cmd.BTF_LOAD, attr, "loading BTF")
    except OSError as err:
        log = ct.create_string_buffer(_VERIFIER_LOG_SIZE)
        attr.btf_log_buf, attr.btf_log_size, attr.btf_log_level = (
            ct.addressof(log),
            _VERIFIER_LOG_SIZE,
            1,
        )
        try:
            return FD(bpf(Cmd.BTF_LOAD, attr))
        except OSError:
            raise OSError(err.errno, f"BTF rejected: {log.value.decode(errors='replace')}") from err
