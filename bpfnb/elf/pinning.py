"""Map pinning with gobpf's and libbpf's semantics: where a map is pinned, reusing a pin, unpinning.

gobpf's ``bpf_map_def.pinning`` (the ``maps/`` section layout):

- ``PIN_NONE`` (0): not pinned.
- ``PIN_OBJECT_NS`` (1): refused. gobpf never implemented it; there is no agreed meaning to copy.
- ``PIN_GLOBAL_NS`` (2): ``/sys/fs/bpf/<namespace>/globals/<map>``.
- ``PIN_CUSTOM_NS`` (3): a path the caller gives (``pin_paths={"map": "dir/name"}``) under the
  bpffs.

libbpf's ``.maps`` definitions: ``__uint(pinning, LIBBPF_PIN_BY_NAME)`` pins at
``<pin_root>/<map>``, the pin root defaulting to ``/sys/fs/bpf``.

A map already pinned at its path is reused, so two loads share it. Paths are checked so that
nothing escapes the bpffs: no ``..`` or ``.`` components, nothing outside the mount.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping

from bpfnb.elf.spec import MapSpec
from bpfnb.errors import PinError
from bpfnb.sys import bpf, mounts
from bpfnb.sys.fd import FD
from bpfnb.sys.mounts import BPFFS

__all__ = [
    "BPFFS",
    "LIBBPF_PIN_BY_NAME",
    "PIN_CUSTOM_NS",
    "PIN_GLOBAL_NS",
    "PIN_NONE",
    "PIN_OBJECT_NS",
    "PinError",
    "map_pin_path",
    "open_or_create",
    "open_pinned",
    "pin",
    "unpin",
    "validate_pin_path",
]

GLOBALS_DIR = "globals"
PIN_NONE, PIN_OBJECT_NS, PIN_GLOBAL_NS, PIN_CUSTOM_NS = 0, 1, 2, 3
LIBBPF_PIN_NONE, LIBBPF_PIN_BY_NAME = 0, 1


def validate_pin_path(path: str, root: str = BPFFS) -> str:
    """``path`` as an absolute path on a bpffs; relative paths are taken under ``root``.

    Raises :class:`PinError` for ``..`` or ``.`` components, empty components, and absolute
    paths outside every bpffs mount. (``root`` itself must be on a bpffs once mounted.)
    """
    if not path or "\0" in path:
        raise PinError(f"invalid pin path {path!r}")
    parts = path.split("/")
    inner = parts[1:] if path.startswith("/") else parts
    if any(part in ("..", ".") for part in inner):
        raise PinError(f"pin path {path!r} may not contain '..' or '.' components")
    if any(part == "" for part in inner[:-1]) or inner[-1] == "":
        raise PinError(f"pin path {path!r} has an empty component")
    full = path if path.startswith("/") else os.path.join(root, path)
    full = os.path.normpath(full)
    if not full.startswith("/sys/fs/bpf/") and mounts.bpffs_root(full) is None:
        raise PinError(f"pin path {full!r} is not on a bpf file system (expected under {BPFFS})")
    return full


def map_pin_path(
    spec: MapSpec, pin_root: str | None = None, pin_paths: Mapping[str, str] | None = None
) -> str | None:
    """Where map ``spec`` is pinned (None when it is not), by its definition's ``pinning``.

    Paths are under ``pin_root`` (validated; default ``/sys/fs/bpf``, which gives gobpf's and
    libbpf's own paths).
    """
    if spec.pinning == PIN_NONE:  # also LIBBPF_PIN_NONE: nothing to check for such a map
        return None
    # The default root is mounted when the first pin is made; another must be a bpffs already.
    root = validate_pin_path(pin_root) if pin_root and pin_root != BPFFS else BPFFS
    if spec.layout == "btf":
        if spec.pinning == LIBBPF_PIN_NONE:
            return None
        if spec.pinning == LIBBPF_PIN_BY_NAME:
            return validate_pin_path(spec.name, root)
        raise PinError(f"map {spec.name!r}: unknown libbpf pinning value {spec.pinning}")
    if spec.pinning == PIN_NONE:
        return None
    if spec.pinning == PIN_OBJECT_NS:
        raise PinError(
            f"map {spec.name!r}: PIN_OBJECT_NS is not supported (gobpf never implemented it); "
            "use PIN_GLOBAL_NS with a namespace, or PIN_CUSTOM_NS with a path"
        )
    if spec.pinning == PIN_GLOBAL_NS:
        if not spec.namespace:
            raise PinError(f"map {spec.name!r}: PIN_GLOBAL_NS needs a namespace in its definition")
        return validate_pin_path(f"{spec.namespace}/{GLOBALS_DIR}/{spec.name}", root)
    if spec.pinning == PIN_CUSTOM_NS:
        custom = (pin_paths or {}).get(spec.name)
        if not custom:
            raise PinError(
                f"map {spec.name!r}: PIN_CUSTOM_NS needs a path: load with "
                f"pin_paths={{{spec.name!r}: 'dir/name'}}"
            )
        path = validate_pin_path(custom, root)
        if os.path.commonpath([path, root]) != root:
            raise PinError(f"map {spec.name!r}: pin path {path} is outside the pin root {root}")
        return path
    raise PinError(f"map {spec.name!r}: unknown pinning value {spec.pinning}")


def _ensure_bpffs(path: str) -> None:
    if mounts.bpffs_root(path) is None and path.startswith(BPFFS + "/"):
        try:
            mounts.ensure_bpffs()
        except OSError as err:
            raise PinError(f"cannot mount the bpf file system at {BPFFS}: {err}") from err


def open_pinned(path: str, spec: MapSpec | None = None) -> FD | None:
    """The map pinned at ``path`` (None when nothing is); with ``spec``, it must match it."""
    if not os.path.exists(path):
        return None
    try:
        fd = bpf.obj_get(path)
    except OSError as err:
        why = os.strerror(err.errno or 0)
        raise PinError(f"cannot open the pinned object at {path}: {why}") from err
    if spec is not None:
        info = bpf.map_info(fd.fileno())
        have = (info.type, info.key_size, info.value_size, info.max_entries)
        # max_entries 0 (a perf event array sized at load) matches any size.
        want = (spec.type, spec.key_size, spec.value_size, spec.max_entries or info.max_entries)
        if have != want:
            fd.close()
            fields = "(type, key size, value size, max entries)"
            raise PinError(
                f"map {spec.name!r}: the map pinned at {path} does not match its definition: "
                f"{fields} pinned {have}, defined {want}"
            )
    return fd


def pin(fd: int, path: str) -> None:
    """Pin ``fd`` at ``path`` (validated; parent directories made; the bpffs mounted)."""
    path = validate_pin_path(path)
    _ensure_bpffs(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        bpf.obj_pin(fd, path)
    except OSError as err:
        why = "something is already pinned there" if err.errno == errno.EEXIST else ""
        raise PinError(f"cannot pin at {path}: {why or os.strerror(err.errno or 0)}") from err


def unpin(path: str) -> bool:
    """Remove the pin at ``path``; False when there was none. The map lives on while in use."""
    try:
        os.unlink(validate_pin_path(path))
    except FileNotFoundError:
        return False
    return True


def open_or_create(
    spec: MapSpec,
    create: Callable[[], FD],
    pin_root: str | None = None,
    pin_paths: Mapping[str, str] | None = None,
) -> tuple[FD, str | None, bool]:
    """The fd for map ``spec``: (fd, pin path or None, whether an existing pin was reused).

    An existing pin is reused when it matches the definition; otherwise ``create()`` makes the
    map and it is pinned when its definition asks. A reused map keeps its contents: the caller
    must not initialise it again.
    """
    path = map_pin_path(spec, pin_root, pin_paths)
    if path is None:
        return create(), None, False
    _ensure_bpffs(path)
    existing = open_pinned(path, spec)
    if existing is not None:
        return existing, path, True
    fd = create()
    try:
        pin(fd.fileno(), path)
    except BaseException:
        fd.close()
        raise
    return fd, path, False
