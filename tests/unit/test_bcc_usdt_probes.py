"""The USDT probes a ``%%bpf`` cell names: ``PATH:PROVIDER:NAME=FUNC`` and its tuple form."""

from __future__ import annotations

import pytest

from bpfnb.bcc.usdt import UsdtProbe, as_probe, as_probes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "/usr/bin/python3.11:python:function__entry=on_entry",
            UsdtProbe("/usr/bin/python3.11", "python", "function__entry", "on_entry"),
        ),
        ("c:libc:setjmp=f", UsdtProbe("c", "libc", "setjmp", "f")),
        ("python:line=on_line", UsdtProbe("", "python", "line", "on_line")),
        # Only the last two colons separate the probe from the path.
        ("/opt/a:b/app:prov:name=g", UsdtProbe("/opt/a:b/app", "prov", "name", "g")),
        ("  /x:p:n=h  ", UsdtProbe("/x", "p", "n", "h")),
    ],
)
def test_parse(text: str, expected: UsdtProbe) -> None:
    assert UsdtProbe.parse(text) == expected
    assert expected.probe == f"{expected.provider}:{expected.name}"


@pytest.mark.parametrize(
    "text",
    [
        "/usr/bin/python3.11:python:function__entry",  # no function
        "python=on_entry",  # no probe name
        "/x:p:n=2f",  # not a C name
        "/x:p:n=",
        "/x::n=f",
        "/x:p:=f",
        "",
    ],
)
def test_malformed_text_says_the_syntax(text: str) -> None:
    with pytest.raises(ValueError, match="expected PATH:PROVIDER:NAME=FUNC"):
        UsdtProbe.parse(text)


def test_tuple_form() -> None:
    assert as_probe(("python3.11", "python:gc__start", "on_gc")) == UsdtProbe(
        "python3.11", "python", "gc__start", "on_gc"
    )
    assert as_probe((None, "python:gc__start", "on_gc")).path == ""
    for bad in (("/x", "python", "f"), ("/x", "a:b:c", "f"), ("/x", "p:n", "not a name")):
        with pytest.raises(ValueError, match=r"expected \(PATH, 'PROVIDER:NAME', FUNC\)"):
            as_probe(bad)


def test_one_function_reads_one_probe() -> None:
    probes = as_probes(["/x:p:a=f", ("/x", "p:b", "g"), UsdtProbe("/x", "p", "c", "h")])
    assert [p.function for p in probes] == ["f", "g", "h"]
    with pytest.raises(ValueError, match="f is named for several probes"):
        as_probes(["/x:p:a=f", "/x:p:b=f"])
