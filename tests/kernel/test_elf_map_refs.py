"""ELF map references resolve by section and offset: a program that uses the second map of a
section counts into that map, and what libbpf refuses (static maps) is refused by name."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bpfnb.elf import load_elf, read
from bpfnb.elf.compiler import elf_cflags
from bpfnb.errors import ElfError
from tests.conftest import need

HEADER = """
#include <bpf/bpf_helpers.h>
struct bpf_map_def { unsigned int type, key_size, value_size, max_entries, map_flags; };
#define ARRAY_DEF { .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 8, .max_entries = 1 }
#define BTF_ARRAY struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); \\
    __type(key, __u32); __type(value, __u64); }
const volatile __u32 target_pid = 0;
static __always_inline void count(void *map) {
    __u32 zero = 0;
    __u64 *n = bpf_map_lookup_elem(map, &zero);
    if (n && (bpf_get_current_pid_tgid() >> 32) == target_pid)
        __sync_fetch_and_add(n, 1);
}
char LICENSE[] SEC("license") = "GPL";
"""

TWO_LEGACY_MAPS = """
struct bpf_map_def SEC("maps") first = ARRAY_DEF;
struct bpf_map_def SEC("maps") second = ARRAY_DEF;
SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx) { count(&second); return 0; }
"""

TWO_BTF_MAPS = """
BTF_ARRAY first SEC(".maps"), second SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx) { count(&second); count(&second); count(&first); return 0; }
"""

STATIC_LEGACY_MAP = """
struct bpf_map_def SEC("maps") first = ARRAY_DEF;
static struct bpf_map_def SEC("maps") second = ARRAY_DEF;
SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx) { count(&second); return 0; }
"""

STATIC_BTF_MAP = """
BTF_ARRAY first SEC(".maps");
static BTF_ARRAY second SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx) { count(&second); return 0; }
"""


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory):
    need(shutil.which("clang") is not None, "clang is not installed")
    out = tmp_path_factory.mktemp("map-refs")

    def build(name: str, body: str) -> Path:
        source = out / f"{name}.c"
        source.write_text(HEADER + body)
        obj = out / f"{name}.o"
        cmd = ["clang", "-O2", "-g", "-target", "bpf", *elf_cflags(), "-c", str(source)]
        subprocess.run([*cmd, "-o", str(obj)], check=True, capture_output=True, text=True)
        return obj

    return build


@pytest.mark.parametrize(
    ("body", "expected"),
    [(TWO_LEGACY_MAPS, {"first": 0, "second": 7}), (TWO_BTF_MAPS, {"first": 7, "second": 14})],
    ids=["legacy maps section", "btf .maps"],
)
def test_the_second_map_of_a_section_is_the_one_used(build, body: str, expected) -> None:
    path = build("two_maps", body)
    with load_elf(path, constants={"target_pid": os.getpid()}) as obj:
        for _ in range(7):
            os.getppid()
        counts = {name: obj.maps[name][0] for name in ("first", "second")}
    assert counts == expected


@pytest.mark.parametrize(
    ("body", "section"),
    [(STATIC_LEGACY_MAP, "maps"), (STATIC_BTF_MAP, ".maps")],
    ids=["legacy maps section", "btf .maps"],
)
def test_static_maps_are_refused_as_libbpf_refuses_them(build, body: str, section: str) -> None:
    # clang refers to a static map through the section symbol plus an offset in the
    # instruction: before, every such reference silently meant the section's first map.
    path = build("static_map", body)
    with pytest.raises(ElfError, match="map 'second': static maps are not supported") as err:
        read(path)
    assert err.value.section == section and err.value.offset is not None
