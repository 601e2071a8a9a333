"""bpftrace's output read line by line: dumps ended by the marker, text, errors located in the
user's program."""

from __future__ import annotations

import json

from bpfnb.bpftrace.diagnostics import NOTIFY_ATTACHED, error_from, original_position
from bpfnb.bpftrace.output import BpftraceOutput
from bpfnb.bpftrace.script import MARKER, parse, with_marker

MEMLOCK = (
    "ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK for bpftrace. If your program is not "
    'loading, you can try "ulimit -l 8192" to fix the problem'
)


def _map(name: str, data: object, kind: str = "map") -> str:
    return json.dumps({"type": kind, "data": {name: data}})


def _feed(out: BpftraceOutput, *lines: str) -> None:
    for line in lines:
        out.on_stdout(line)


def test_attached_text_and_lost_events() -> None:
    out = BpftraceOutput(("@a",))
    out.on_stderr(MEMLOCK)
    _feed(out, '{"type": "attached_probes", "data": {"probes": 2}}')
    assert not out.attached and out.probe_count == 2  # 0.17 says this before attaching
    out.on_stderr(NOTIFY_ATTACHED)
    assert out.attached and out.errors == []
    _feed(
        out,
        '{"type": "printf", "data": "hello 1\\n"}',
        '{"type": "time", "data": "10:00:00"}',
        '{"type": "lost_events", "data": {"events": 3}}',
        "No probes to attach",
    )
    assert [text for _, text in out.texts_since(0)] == [
        "hello 1\n",
        "10:00:00\n",
        "(bpftrace lost 3 events)\n",
        "No probes to attach\n",
    ]
    assert out.lost == 3 and out.plain == ["No probes to attach"]
    assert [i for i, _ in out.texts_since(2)] == [2, 3]


def test_a_dump_ends_at_the_marker_and_empties_what_it_left_out() -> None:
    out = BpftraceOutput(("@a", "@b", "@never"))
    _feed(out, _map("@a", 1), _map("@b", {"x": 2}), _map(MARKER, 1))
    assert out.dumps == 1
    assert out.maps == {"@a": ("map", 1), "@b": ("map", {"x": 2}), "@never": ("", None)}
    _feed(out, _map("@b", {"x": 3}), _map(MARKER, 1))  # @a was cleared: bpftrace left it out
    assert out.dumps == 2 and out.maps["@a"] == ("map", None) and out.maps["@b"][1] == {"x": 3}


def test_the_programs_own_prints_before_a_dump_are_not_part_of_it() -> None:
    out = BpftraceOutput(("@a", "@b"))
    _feed(out, _map("@b", 5))  # print(@b) from an interval probe
    assert out.maps["@b"] == ("map", 5) and out.dumps == 0
    # Then a dump where @b is empty: "@a" sorts before "@b", so the dump starts afresh there.
    _feed(out, _map("@a", 1), _map(MARKER, 1))
    assert out.maps["@b"] == ("map", None)


def test_hist_and_stats_keep_their_type() -> None:
    out = BpftraceOutput()
    _feed(out, _map("@h", [{"min": 0, "max": 0, "count": 1}], "hist"), _map("@s", 7, "stats"))
    assert out.maps["@h"][0] == "hist" and out.maps["@s"] == ("stats", 7)


def test_error_located_in_the_users_program() -> None:
    source = "BEGIN { @a = 1 +; }\n"
    ran, at, inserted = with_marker(parse(source))
    column = ran.index("+;") + 2  # bpftrace: "stdin:1:<col>-<end>: ERROR: ..." in what ran
    stderr = [
        MEMLOCK,
        f"/tmp/x/program.bt:1:{column}-{column + 2}: ERROR: syntax error, unexpected ;",
        ran.splitlines()[0],
        "               ~~",
    ]
    err = error_from(stderr, [], 1, source, ran, at, inserted)
    assert (err.line, err.column, err.message) == (1, 17, "syntax error, unexpected ;")
    assert err.source_line == "BEGIN { @a = 1 +; }"
    assert "RLIMIT_MEMLOCK" not in err.output


def test_errors_without_a_location() -> None:
    ran, at, n = with_marker(parse("kprobe:f { }"))
    stderr = [
        "create_probe_event: open(/sys/kernel/tracing/kprobe_events): No such file or directory",
        "ERROR: Error attaching probe: 'kprobe:f'",
    ]
    err = error_from(stderr, [], 255, "kprobe:f { }", ran, at, n)
    assert (err.line, str(err)) == (0, "Error attaching probe: 'kprobe:f'")
    assert "kprobe_events" in err.output
    err = error_from([MEMLOCK], ["No probes to attach"], 1, "x", "x", 0, 0)
    assert str(err) == "No probes to attach"
    assert str(error_from([], [], 3, "x", "x", 0, 0)) == "bpftrace exited with status 3"


def test_original_position_skips_the_inserted_text() -> None:
    ran = "BEGIN { INSERTED x }"
    at, inserted = ran.index("INSERTED"), len("INSERTED ")
    assert original_position(ran, 1, ran.index("x") + 1, at, inserted) == at
    assert original_position(ran, 1, 3, at, inserted) == 2  # before the insertion: unchanged
