"""What a notebook user reads when something goes wrong, through a real IPython shell: the
verifier's C line and hint, compiler warnings, usage errors, misspelled names, missing keys."""

from __future__ import annotations

import os
import threading

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import bpfnb
from bpfnb.errors import BpfError, MissingKeyError, NoSuchMapError, VerifierError

COUNTER = """
BPF_ARRAY(calls, u64, 1);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((u32)bpf_get_current_pid_tgid() == TID)
        calls.increment(0);
    return 0;
}
"""

UNCHECKED = """\
BPF_HASH(counts, u32, u64);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 key = 1;
    u64 *value = counts.lookup(&key);
    *value += 1;
    return 0;
}
"""


TID = f"-D TID={threading.get_native_id()}"


@pytest.fixture
def shell(bcc_ok: None):
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "bpfnb")
    yield ip
    ip.run_line_magic("bpf_close", "--all")


def _rendered(err: BaseException) -> str:
    return "\n".join(err._render_traceback_())  # type: ignore[attr-defined]


def _no_internals(text: str) -> None:
    assert "Traceback" not in text and "bpfnb/" not in text and ".py" not in text
    assert "b'" not in text


def test_a_verifier_rejection_names_the_cell_line_and_the_fix(shell) -> None:
    with pytest.raises(VerifierError) as caught:
        shell.run_cell_magic("bpf", "unchecked", UNCHECKED)
    err = caught.value
    assert err.line == 6  # `*value += 1;` is line 6 of the cell (bcc's inserted struct aside)
    text = _rendered(err)
    assert "(at line 6: *value += 1;)" in text
    assert "check the pointer before using it" in text
    assert "instruction: " in text and "map_value_or_null" in text
    _no_internals(text)
    assert bpfnb.last_error is err  # rendering it made it the last error
    assert "map_value_or_null" in err.log and "<details>" in err._repr_html_()


def test_a_compile_error_is_the_last_error_too(shell) -> None:
    with pytest.raises(BpfError) as caught:
        shell.run_cell_magic(
            "bpf", f"typo {TID}", COUNTER.replace("calls.increment", "call.increment")
        )
    text = _rendered(caught.value)
    assert "line 5" in text and "call" in text
    _no_internals(text)
    assert bpfnb.last_error is caught.value


def test_warnings_of_a_compiled_cell_are_shown_once(shell, capsys) -> None:
    body = COUNTER.replace("return 0;\n}", "int unused = 1;\n    return 0;\n}")
    obj = shell.run_cell_magic("bpf", f"warned {TID} --cflags=-Wall", body)
    shown = capsys.readouterr().out
    assert shown.count("unused variable 'unused'") == 1
    assert "warned: 1 compiler warning(s)" in shown and "line 6:9:" in shown
    assert [w.line for w in obj.warnings] == [6]


def test_usage_errors_say_what_to_do(shell) -> None:
    with pytest.raises(UsageError, match=r"%%bpf needs a NAME .*%%bpf NAME \[options\]"):
        shell.run_cell_magic("bpf", "", COUNTER)
    with pytest.raises(UsageError, match="(?s)unrecognized arguments: --colour.*%bpf --help"):
        shell.run_cell_magic("bpf", "x --colour", COUNTER)
    with pytest.raises(UsageError, match="a cell magic"):
        shell.run_line_magic("bpf", "x")
    shell.run_cell_magic("bpf", f"counter {TID}", COUNTER)
    with pytest.raises(UsageError, match=r"say which map of counter to show \(counter.calls\)"):
        shell.run_line_magic("bpf_show", "counter")
    with pytest.raises(UsageError, match=r"no map 'call'; did you mean 'calls'\?"):
        shell.run_line_magic("bpf_show", "counter.call")
    with pytest.raises(UsageError, match=r"no live BPF object 'countr'; did you mean 'counter'"):
        shell.run_line_magic("bpf_show", "countr.calls")


def test_help_describes_the_cell_magic_and_lists_every_magic(shell, capsys) -> None:
    shell.run_line_magic("bpf", "--help")
    text = capsys.readouterr().out
    assert text.startswith("%%bpf NAME [options]") and "::" not in text
    for magic in ("%bpf_elf", "%bpf_show", "%bpf_trace", "%bpf_list", "%bpf_close", "%bpf_doctor"):
        assert f"\n  {magic}" in text
    assert shell.find_cell_magic("bpf").__doc__ == text.rstrip("\n") + "\n"


def test_misspelled_maps_and_missing_keys(shell) -> None:
    obj = shell.run_cell_magic("bpf", f"counter {TID}", COUNTER)
    with pytest.raises(NoSuchMapError) as caught:
        obj.maps["call"]
    assert str(caught.value) == "counter has no map 'call'; did you mean 'calls'? (maps: calls)"
    _no_internals(_rendered(caught.value))
    hashed = shell.run_cell_magic("bpf", "hashed", UNCHECKED.replace("*value += 1;", ""))
    with pytest.raises(MissingKeyError) as missing:
        hashed.maps["counts"][7]
    assert isinstance(missing.value, KeyError) and str(missing.value) == "counts has no key 7"
    _no_internals(_rendered(missing.value))
    os.getppid()
