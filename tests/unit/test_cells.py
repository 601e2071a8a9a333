"""CellSpec: a cell's options as data, with per-engine fields filled on each engine."""

from __future__ import annotations

import pickle

from bpfnb.cells import CellSpec


def test_engine_fields_are_filled_in_defines_and_constants_only() -> None:
    spec = CellSpec(
        name="c",
        source="int f(void *ctx) { return {pid}; }",
        defines={"PID": "{pid}", "TAG": "{{engine}}", "N": "{n}", "X": "7"},
        constants=("target={pid}",),
    )
    assert spec.templated() == ["engine", "pid"]
    filled = spec.for_engine(engine=2, pid=4242, host="h")
    assert filled.defines == {"PID": "4242", "TAG": "2", "N": "{n}", "X": "7"}
    assert filled.constants == ("target=4242",)
    assert filled.source == spec.source  # the C text is never templated
    assert spec.defines["PID"] == "{pid}"  # the original stays a template


def test_a_spec_travels_pickled() -> None:
    spec = CellSpec(name="c", source="x", defines={"A": "{host}"}, elf=True, constants=("k=1",))
    assert pickle.loads(pickle.dumps(spec)) == spec
