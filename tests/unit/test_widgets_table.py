"""LiveTable: sorting, top rows, deltas and the drawn table, against a fake map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bpfnb.widgets import LiveTable


class FakeMap:
    name = "by_comm"

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()


def counts(pairs: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {"comm": list(pairs), "value": np.array(list(pairs.values()), dtype=np.uint64)}
    )


def test_sorted_by_value_largest_first_then_by_key():
    view = LiveTable(FakeMap(counts({"b": 5, "a": 5, "c": 9, "d": 1})))
    assert list(view.data["comm"]) == ["c", "a", "b", "d"]
    assert list(view.data["value"]) == [9, 5, 5, 1]
    view.close()


def test_top_and_explicit_sort():
    source = FakeMap(counts({f"p{i}": i for i in range(50)}))
    view = LiveTable(source, top=3)
    assert list(view.data["comm"]) == ["p49", "p48", "p47"]
    view.close()
    view = LiveTable(source, sort_by="comm", ascending=True, top=None)
    assert len(view.data) == 50
    assert view.data["comm"].iloc[0] == "p0"
    view.close()


def test_unknown_sort_column_is_a_clear_error():
    with pytest.raises(KeyError, match="sort_by='nope'"):
        LiveTable(FakeMap(counts({"a": 1})), sort_by="nope")


def test_resorts_on_each_refresh():
    source = FakeMap(counts({"a": 1, "b": 2}))
    view = LiveTable(source)
    assert list(view.data["comm"]) == ["b", "a"]
    source.frame = counts({"a": 10, "b": 2})
    view.refresh()
    assert list(view.data["comm"]) == ["a", "b"]
    view.close()


def test_deltas_per_refresh_and_new_keys_count_from_zero():
    source = FakeMap(counts({"a": 10, "b": 20}))
    view = LiveTable(source, deltas=True)
    assert list(view.data["Δvalue"]) == [0, 0]
    source.frame = counts({"a": 15, "b": 21, "c": 4})
    view.refresh()
    assert dict(zip(view.data["comm"], view.data["Δvalue"])) == {"a": 5, "b": 1, "c": 4}
    assert list(view.data["comm"]) == ["a", "c", "b"]  # sorted by the change
    source.frame = counts({"a": 3})  # cleared and refilled: a negative change
    view.refresh()
    assert list(view.data["Δvalue"]) == [-12]
    view.close()


def test_struct_keys_and_per_cpu_total():
    frame = pd.DataFrame(
        {
            "pid": np.array([1, 2, 3], dtype=np.uint32),
            "comm": ["x", "y", "z"],
            "total": np.array([5, 50, 7], dtype=np.uint64),
            "total.cpu0": np.array([5, 25, 7], dtype=np.uint64),
            "total.cpu1": np.array([0, 25, 0], dtype=np.uint64),
        }
    )

    class StructMap(FakeMap):
        key_type = None

    view = LiveTable(StructMap(frame))
    assert list(view.data["pid"]) == [2, 3, 1]
    view.close()


def test_drawn_table_has_every_row_and_escapes_text():
    view = LiveTable(FakeMap(counts({"<b>": 2, "ok": 1})))
    body = view._body.value
    assert body.count("<tr>") == 3  # header and two rows
    assert "&lt;b&gt;" in body and "<b>" not in body.split("</style>")[1]
    view.close()


def test_empty_map_draws_a_placeholder():
    view = LiveTable(FakeMap(counts({})))
    assert view.data.empty
    assert "no rows yet" in view._body.value
    view.close()


def test_struct_value_sorts_by_its_first_field_and_per_cpu_by_the_total():
    frame = pd.DataFrame(
        {
            "key": np.array([3, 4], dtype=np.uint32),
            "calls": np.array([1, 9], dtype=np.uint64),
            "bytes": np.array([100, 10], dtype=np.uint64),
        }
    )
    view = LiveTable(FakeMap(frame))
    assert list(view.data["key"]) == [4, 3]
    view.close()
    per_cpu = pd.DataFrame(
        {
            "key": np.array([1, 2], dtype=np.uint32),
            "value": np.array([11, 50], dtype=np.uint64),
            "value.cpu0": np.array([11, 0], dtype=np.uint64),
            "value.cpu1": np.array([0, 50], dtype=np.uint64),
        }
    )
    view = LiveTable(FakeMap(per_cpu), sort_by=None)
    assert list(view.data["key"]) == [2, 1]
    view.close()


class FakeClusterMap(FakeMap):
    """A gathered map: the same keys on several engines, told apart by host and engine."""

    label_columns = ("host", "engine")


def gathered(rows: list[tuple[str, int, int, int]]) -> pd.DataFrame:
    host, engine, key, value = zip(*rows)
    return pd.DataFrame(
        {
            "host": list(host),
            "engine": np.array(engine, dtype=np.int64),
            "key": np.array(key, dtype=np.uint32),
            "value": np.array(value, dtype=np.uint64),
        }
    )


def test_deltas_of_a_gathered_map_are_per_host_and_engine():
    source = FakeClusterMap(gathered([("h1", 0, 1, 10), ("h1", 1, 1, 100), ("h2", 2, 1, 50)]))
    view = LiveTable(source, deltas=True)
    source.frame = gathered([("h1", 0, 1, 11), ("h1", 1, 1, 130), ("h2", 2, 1, 50)])
    view.refresh()
    changes = {
        (h, e): d for h, e, d in zip(view.data["host"], view.data["engine"], view.data["Δvalue"])
    }
    assert changes == {("h1", 0): 1, ("h1", 1): 30, ("h2", 2): 0}
    assert len(view.data) == 3  # one row each: the key alone would match rows across engines
    view.close()
