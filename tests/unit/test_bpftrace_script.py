"""What bpfnb reads from a bpftrace program's text, and the marker it adds to ``BEGIN``."""

from __future__ import annotations

from bpfnb.bpftrace.script import MARKER, parse, with_marker

PROGRAM = """#include <linux/sched.h>
// BEGIN { not a probe }
struct task { int pid; };
/* a comment with { braces */
uprobe:/bin/bash:readline, tracepoint:syscalls:sys_enter_* /pid / 2 == $1/ {
    @calls[comm, pid] = count();
    @text = "@notamap {";
    print(@lat);
}
BEGIN { printf("start\\n"); @sizes[tid] = hist(arg0); }
END { clear(@calls); @lat = lhist(1, 0, 10, 1); @ = sum(3); @s = stats(2); }
"""


def test_probes_as_written() -> None:
    script = parse(PROGRAM)
    assert script.probes == [
        "uprobe:/bin/bash:readline",
        "tracepoint:syscalls:sys_enter_*",
        "BEGIN",
        "END",
    ]


def test_maps_with_their_keys_and_functions() -> None:
    maps = {name: (info.keys, info.function) for name, info in parse(PROGRAM).maps.items()}
    assert maps == {
        "@calls": (2, "count"),
        "@text": (0, ""),
        "@lat": (0, "lhist"),
        "@sizes": (1, "hist"),
        "@": (0, "sum"),
        "@s": (0, "stats"),
    }


def test_subscripts_count_top_level_commas_only() -> None:
    maps = parse("k:f { @a[pid, str(arg0, 4), (1, 2)] = sum(arg1); @b[1] = 1; @b = 2; }").maps
    assert (maps["@a"].keys, maps["@a"].function) == (3, "sum")
    assert maps["@b"].keys == 1  # the subscripted use says how many keys


def test_marker_goes_first_into_begin() -> None:
    script = parse(PROGRAM)
    text, at, length = with_marker(script)
    assert text[at : at + length] == f" {MARKER} = 1;"
    assert text[:at].endswith("BEGIN {") and text[at + length :] == PROGRAM[at:]
    assert text.count("\n") == PROGRAM.count("\n")  # error line numbers stay the user's


def test_marker_gets_its_own_begin_when_there_is_none() -> None:
    program = "interval:s:1 { @n = count(); }"
    text, at, length = with_marker(parse(program))
    assert text == program + f"\nBEGIN {{ {MARKER} = 1; }}\n"
    assert (at, length) == (len(program), 0)
    assert MARKER not in parse(text).maps


def test_marker_sorts_after_any_map_name() -> None:
    assert all(name < MARKER for name in ("@zzzz", "@z_", "@zz9", "@Z", "@_", "@zzzzzzzzzzzzzzz"))
