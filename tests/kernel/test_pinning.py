"""Pinning on the real bpffs: a pin is reused (two opens share the map), unpinned on request,
and a pin that does not match the definition is refused."""

from __future__ import annotations

import ctypes as ct
import os
import uuid

import pytest

from bpfnb.elf.pinning import (
    PIN_GLOBAL_NS,
    PinError,
    open_or_create,
    unpin,
)
from bpfnb.elf.spec import MapSpec
from bpfnb.sys import bpf
from bpfnb.sys.constants import MapType


@pytest.fixture
def namespace():
    name = f"bpfnb-test-{uuid.uuid4().hex[:8]}"
    yield name
    root = f"/sys/fs/bpf/{name}"
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for f in filenames:
            os.unlink(os.path.join(dirpath, f))
        os.rmdir(dirpath)


def spec(namespace: str, max_entries: int = 16) -> MapSpec:
    return MapSpec(
        "shared",
        MapType.HASH,
        4,
        8,
        max_entries,
        pinning=PIN_GLOBAL_NS,
        namespace=namespace,
        layout="gobpf",
    )


def create(s: MapSpec):
    return lambda: bpf.map_create(s.type, s.key_size, s.value_size, s.max_entries, name=s.name)


def test_pin_is_reused_and_shared_then_unpinned(namespace: str) -> None:
    s = spec(namespace)
    first, path, reused = open_or_create(s, create(s))
    assert (path, reused) == (f"/sys/fs/bpf/{namespace}/globals/shared", False)
    assert os.path.exists(path)
    second, path2, reused2 = open_or_create(s, create(s))
    assert (path2, reused2) == (path, True)
    with first, second:
        assert bpf.map_info(first.fileno()).id == bpf.map_info(second.fileno()).id
        bpf.map_update(first.fileno(), ct.c_uint32(7), ct.c_uint64(4242))
        value = ct.c_uint64()
        assert bpf.map_lookup(second.fileno(), ct.c_uint32(7), value)
        assert value.value == 4242
    # Closing the fds keeps the pin (and the map, with its contents).
    assert os.path.exists(path)
    third, _, reused3 = open_or_create(s, create(s))
    with third:
        assert reused3
        assert bpf.map_lookup(third.fileno(), ct.c_uint32(7), value) and value.value == 4242
    assert unpin(path) is True
    assert not os.path.exists(path)
    assert unpin(path) is False
    fresh, _, reused4 = open_or_create(s, create(s))
    with fresh:
        assert not reused4
        assert not bpf.map_lookup(fresh.fileno(), ct.c_uint32(7), value)
    unpin(path)


def test_a_pin_that_does_not_match_is_refused(namespace: str) -> None:
    s = spec(namespace)
    fd, path, _ = open_or_create(s, create(s))
    fd.close()
    try:
        other = spec(namespace, max_entries=99)
        with pytest.raises(PinError, match="does not match its definition"):
            open_or_create(other, create(other))
    finally:
        assert path is not None
        unpin(path)


# -- through the ELF loader ----------------------------------------------------------------------


@pytest.fixture
def pin_root(namespace: str) -> str:
    return f"/sys/fs/bpf/{namespace}"


def test_two_loads_share_a_libbpf_pinned_map(clang_build, pin_root: str) -> None:
    from bpfnb.elf.compiler import elf_cflags
    from bpfnb.elf.loader import load_elf

    path = clang_build("link_pinned_btf", *elf_cflags())
    pid = {"target_pid": os.getpid()}
    first = load_elf(path, constants=pid, pin_root=pin_root)
    second = load_elf(path, constants=pid, pin_root=pin_root)
    pinned = f"{pin_root}/pinned_calls"
    try:
        assert first.pins == second.pins == {"pinned_calls": pinned}
        ids = {bpf.map_info(o.maps["pinned_calls"].fd).id for o in (first, second)}
        assert len(ids) == 1
        for _ in range(50):
            os.getppid()
        # Both programs count into the one shared map.
        assert second.maps["pinned_calls"][0] == 100
    finally:
        first.close()
    assert os.path.exists(pinned)  # plain close keeps the pin
    second.close(unpin=True)
    assert not os.path.exists(pinned)


def test_gobpf_pinning_through_the_loader(clang_build, pin_root: str) -> None:
    from bpfnb.elf.compiler import elf_cflags
    from bpfnb.elf.loader import load_elf

    path = clang_build("link_pinned_gobpf", *elf_cflags())
    with pytest.raises(PinError, match="PIN_CUSTOM_NS needs a path"):
        load_elf(path, pin_root=pin_root)
    obj = load_elf(path, pin_root=pin_root, pin_paths={"custom_calls": "mine/custom"})
    pins = dict(obj.pins)
    try:
        assert pins == {
            "global_calls": f"{pin_root}/bpfnb_ns/globals/global_calls",
            "custom_calls": f"{pin_root}/mine/custom",
        }
        assert all(os.path.exists(p) for p in pins.values())
    finally:
        obj.close(unpin=True)
    assert not any(os.path.exists(p) for p in pins.values())


def test_pins_by_default_where_libbpf_would(clang_build) -> None:
    from bpfnb.elf.compiler import elf_cflags
    from bpfnb.elf.loader import load_elf

    path = clang_build("link_pinned_btf", *elf_cflags())
    pinned = "/sys/fs/bpf/pinned_calls"  # LIBBPF_PIN_BY_NAME under libbpf's default root
    unpin(pinned)  # nothing left from an earlier, interrupted run
    pid = {"target_pid": os.getpid()}
    first = load_elf(path, constants=pid)
    second = load_elf(path, constants=pid)
    try:
        assert first.pins == second.pins == {"pinned_calls": pinned}
        assert os.path.exists(pinned)
        ids = {bpf.map_info(o.maps["pinned_calls"].fd).id for o in (first, second)}
        assert len(ids) == 1  # the second load reused the pin
        for _ in range(30):
            os.getppid()
        assert first.maps["pinned_calls"][0] == 60  # both programs count into the one map
    finally:
        first.close()
        second.close(unpin=True)
    assert not os.path.exists(pinned)
    with load_elf(path, attach=False, pin=False) as obj:
        assert obj.pins == {}
    assert not os.path.exists(pinned)


def test_a_bpffs_mounted_elsewhere_is_a_valid_pin_root(tmp_path) -> None:
    import ctypes

    from bpfnb.elf.pinning import validate_pin_path

    libc = ctypes.CDLL(None, use_errno=True)
    mount = str(tmp_path / "bpffs")
    os.mkdir(mount)
    with pytest.raises(PinError, match="not on a bpf file system"):
        validate_pin_path(f"{mount}/x")
    assert libc.mount(b"bpf", mount.encode(), b"bpf", 0, None) == 0, ctypes.get_errno()
    try:
        s = MapSpec("elsewhere", MapType.ARRAY, 4, 8, 1, pinning=1, layout="btf")
        fd, path, reused = open_or_create(s, create(s), pin_root=mount)
        with fd:
            assert (path, reused) == (f"{mount}/elsewhere", False)
            assert os.path.exists(path)
        assert unpin(f"{mount}/elsewhere")
    finally:
        libc.umount2(mount.encode(), 0)
