"""Pin paths: gobpf's and libbpf's layouts, and validation that keeps pins on the bpffs."""

from __future__ import annotations

import pytest

from bpfnb.elf.pinning import (
    LIBBPF_PIN_BY_NAME,
    PIN_CUSTOM_NS,
    PIN_GLOBAL_NS,
    PIN_NONE,
    PIN_OBJECT_NS,
    PinError,
    map_pin_path,
    validate_pin_path,
)
from bpfnb.elf.spec import MapSpec
from bpfnb.errors import BpfError
from bpfnb.sys.constants import MapType


def spec(pinning: int, layout: str = "gobpf", namespace: str = "") -> MapSpec:
    return MapSpec(
        "counts", MapType.HASH, 4, 8, 16, pinning=pinning, namespace=namespace, layout=layout
    )


def test_gobpf_global_namespace() -> None:
    path = map_pin_path(spec(PIN_GLOBAL_NS, namespace="demo"))
    assert path == "/sys/fs/bpf/demo/globals/counts"
    path = map_pin_path(spec(PIN_GLOBAL_NS, namespace="demo"), pin_root="/sys/fs/bpf/t")
    assert path == "/sys/fs/bpf/t/demo/globals/counts"


def test_gobpf_custom_namespace_takes_the_callers_path() -> None:
    path = map_pin_path(spec(PIN_CUSTOM_NS), pin_paths={"counts": "mine/counts_v2"})
    assert path == "/sys/fs/bpf/mine/counts_v2"
    with pytest.raises(PinError, match="PIN_CUSTOM_NS needs a path"):
        map_pin_path(spec(PIN_CUSTOM_NS))


def test_not_pinned() -> None:
    assert map_pin_path(spec(PIN_NONE)) is None
    assert map_pin_path(spec(0, layout="btf")) is None


def test_libbpf_pin_by_name_under_the_pin_root() -> None:
    assert map_pin_path(spec(LIBBPF_PIN_BY_NAME, layout="btf")) == "/sys/fs/bpf/counts"
    root = "/sys/fs/bpf/bpfnb-app"
    assert map_pin_path(spec(LIBBPF_PIN_BY_NAME, layout="btf"), pin_root=root) == (
        "/sys/fs/bpf/bpfnb-app/counts"
    )


def test_object_namespace_is_refused_clearly() -> None:
    with pytest.raises(PinError, match="PIN_OBJECT_NS is not supported"):
        map_pin_path(spec(PIN_OBJECT_NS))


def test_global_namespace_needs_a_namespace() -> None:
    with pytest.raises(PinError, match="needs a namespace"):
        map_pin_path(spec(PIN_GLOBAL_NS))


@pytest.mark.parametrize(
    "bad",
    [
        "../etc/passwd",
        "a/../../etc",
        "./x",
        "a/./b",
        "/sys/fs/bpf/../../etc/x",
        "/tmp/pinned",
        "/etc/passwd",
        "a//b",
        "a/",
        "",
    ],
)
def test_paths_that_escape_the_bpffs_are_refused(bad: str) -> None:
    with pytest.raises(PinError):
        validate_pin_path(bad)


def test_namespace_and_pin_root_are_validated_too() -> None:
    with pytest.raises(PinError):
        map_pin_path(spec(PIN_GLOBAL_NS, namespace="../../tmp"))
    with pytest.raises(PinError):
        map_pin_path(spec(LIBBPF_PIN_BY_NAME, layout="btf"), pin_root="/tmp")
    with pytest.raises(PinError):
        map_pin_path(spec(PIN_CUSTOM_NS), pin_paths={"counts": "/etc/counts"})


def test_pin_error_is_a_bpf_error_and_a_value_error() -> None:
    assert issubclass(PinError, BpfError) and issubclass(PinError, ValueError)


def test_good_paths() -> None:
    assert validate_pin_path("a/b") == "/sys/fs/bpf/a/b"
    assert validate_pin_path("/sys/fs/bpf/x") == "/sys/fs/bpf/x"
