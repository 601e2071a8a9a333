"""``%%bpf --elf`` cell compilation: clang's errors come back with the cell's line numbers."""

from __future__ import annotations

import shutil

import pytest

from bpfnb.diagnostics import parse_diagnostics
from bpfnb.elf.compiler import (
    compile_source,
    elf_cflags,
    parse_constants,
)
from bpfnb.elf.reader import read
from bpfnb.errors import CompileError

needs_clang = pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")

GOOD = """\
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int count(void *ctx)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    __u64 one = 1, *seen = bpf_map_lookup_elem(&counts, &pid);
    if (seen)
        __sync_fetch_and_add(seen, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


@needs_clang
def test_a_cell_compiles_to_an_object_the_reader_understands() -> None:
    spec = read(compile_source(GOOD, name="counter"))
    assert list(spec.programs) == ["count"]
    assert spec.programs["count"].section == "tracepoint/syscalls/sys_enter_getppid"
    assert spec.maps["counts"].max_entries == 64


@needs_clang
def test_compile_errors_carry_cell_line_numbers() -> None:
    broken = GOOD.replace("return 0;", "return undefined_name;")
    with pytest.raises(CompileError) as err:
        compile_source(broken)
    first = [d for d in err.value.diagnostics if d.severity == "error"][0]
    assert first.line == 19
    assert "undefined_name" in first.message
    assert first.source_line.strip() == "return undefined_name;"
    assert str(err.value).startswith("line 19:")


@needs_clang
def test_user_clang_flags_are_passed() -> None:
    text = GOOD.replace("max_entries, 64", "max_entries, ENTRIES")
    spec = read(compile_source(text, "-DENTRIES=128"))
    assert spec.maps["counts"].max_entries == 128


def test_diagnostics_in_headers_become_notes() -> None:
    output = (
        "/x/cell.bpf.c:3:5: error: use of undeclared identifier 'y'\n"
        "/usr/include/z.h:10:1: note: expanded from macro 'Z'\n"
    )
    (d,) = parse_diagnostics(output, "a\nb\n    y;\n", "cell.bpf.c")
    assert (d.line, d.column, d.severity) == (3, 5, "error")
    assert d.source_line == "    y;"
    assert d.notes == ["/usr/include/z.h:10: note: expanded from macro 'Z'"]


def test_cflags_include_bpfnb_headers_and_vmlinux_only_when_asked() -> None:
    flags = elf_cflags("#include <bpf/bpf_helpers.h>\n")
    assert any(f.endswith("bpfnb/elf/include") for f in flags)
    assert not any("vmlinux" in f for f in flags)


def test_constants_from_the_magic_line() -> None:
    assert parse_constants(["PID=42", "MASK=0x10", "NAME=eth0"]) == {
        "PID": 42,
        "MASK": 16,
        "NAME": "eth0",
    }
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_constants(["oops"])


@needs_clang
def test_line_info_names_each_line_with_its_own_text() -> None:
    # The counting header is included in the place of the cell's last #include, so the cell
    # keeps its lines: clang's BTF line text (what the verifier and disassembly show) is the
    # text of the line numbered.
    text = "#include <linux/bpf.h>\n" + GOOD
    lines = text.splitlines()
    records = [
        info
        for info in read(compile_source(text)).programs["count"].line_info
        if info.file.endswith("cell.bpf.c") and info.line > 0 and info.source
    ]
    assert len(records) > 3
    for info in records:
        assert info.source == lines[info.line - 1].strip(), info


@needs_clang
def test_a_missing_last_header_is_reported_at_its_line() -> None:
    text = GOOD.replace(
        "#include <bpf/bpf_helpers.h>", "#include <bpf/bpf_helpers.h>\n#include <nothere.h>"
    )
    with pytest.raises(CompileError) as err:
        compile_source(text)
    first = [d for d in err.value.diagnostics if d.severity in ("error", "fatal error")][0]
    assert (first.line, first.column) == (2, 10)
    assert "nothere.h" in first.message


@needs_clang
def test_a_cell_without_includes_is_counted_too() -> None:
    text = GOOD.replace("#include <bpf/bpf_helpers.h>\n", "")
    spec = read(compile_source(text))
    assert {"counts", "bpfnb_drops"} <= set(spec.maps)
