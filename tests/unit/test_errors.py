from __future__ import annotations

import pickle

import pytest

from bpfnb.errors import AttachError, CompileError, Diagnostic, KernelFeatureError, VerifierError

LOG = """0: R1=ctx() R10=fp0
0: (61) r0 = *(u32 *)(r1 +100000)
invalid bpf_context access off=100000 size=4
processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0
"""


def test_verifier_error_summarises_and_keeps_log() -> None:
    err = VerifierError("prog", 13, LOG)
    assert "invalid bpf_context access off=100000 size=4" in str(err)
    assert err.log == LOG
    assert err.failing_instruction == "0: (61) r0 = *(u32 *)(r1 +100000)"
    assert "<details>" in err._repr_html_()


def test_compile_error_renders_caret_at_column() -> None:
    diag = Diagnostic(3, 5, "error", "use of undeclared identifier 'x'", "int y = x;")
    err = CompileError([diag])
    assert str(err) == "line 3: use of undeclared identifier 'x'"
    rendered = "\n".join(err._render_traceback_())
    assert "    int y = x;\n        ^" in rendered


def test_kernel_feature_error_says_why() -> None:
    err = KernelFeatureError("kprobes", "this kernel was built without CONFIG_KPROBES")
    assert str(err) == "kprobes: this kernel was built without CONFIG_KPROBES"


def test_diagnostics_map_shifted_lines_back_to_the_cell() -> None:
    from bpfnb.diagnostics import parse_diagnostics

    cell = "int a;\n\nint f() {\n    return slot;\n}\n"
    output = (
        "<cell>:8:12: error: use of undeclared identifier 'slot'\n"
        "    return slot;\n"
        "           ^\n"
        "/virtual/include/bcc/helpers.h:3:1: note: something in a header\n"
    )
    [diagnostic] = parse_diagnostics(output, cell)
    assert (diagnostic.line, diagnostic.column) == (4, 12)
    assert diagnostic.notes == ["/virtual/include/bcc/helpers.h:3: note: something in a header"]


@pytest.mark.parametrize(
    "err",
    [
        CompileError([Diagnostic(3, 12, "error", "use of undeclared identifier 'x'", "  x;")]),
        VerifierError("f", 13, "0: (85) call bpf_map_lookup_elem#1\nprocessed 3 insns"),
        AttachError("attaching f", 2),
        KernelFeatureError("kprobes", "no CONFIG_KPROBES"),
    ],
)
def test_errors_survive_pickling_whole(err) -> None:
    # An engine of a cluster sends its error to the notebook pickled.
    err.__notes__ = ["on engine 2"]
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err)
    assert str(again) == str(err) and vars(again) == vars(err)
    assert again._render_traceback_() == err._render_traceback_()
