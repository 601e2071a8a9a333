"""``BpftraceError``: a short message with the program line, no traceback."""

from __future__ import annotations

from bpfnb.errors import BpfError, BpftraceError


def test_renders_the_line_and_a_caret() -> None:
    err = BpftraceError("syntax error, unexpected ;", 2, 16, "BEGIN { @a = 1 +; }")
    assert isinstance(err, BpfError)
    assert str(err) == "line 2:16: syntax error, unexpected ;"
    assert err._render_traceback_() == [
        "\x1b[31mBpftraceError\x1b[0m: line 2:16: syntax error, unexpected ;",
        "    BEGIN { @a = 1 +; }",
        "                   ^",
    ]


def test_without_a_location() -> None:
    err = BpftraceError("Error attaching probe: 'kprobe:f'", output="detail\n")
    assert str(err) == "Error attaching probe: 'kprobe:f'"
    assert len(err._render_traceback_()) == 1 and err.output == "detail\n"
