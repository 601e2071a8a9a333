"""``ClusterMap``: one map of a cluster object, read on every engine and gathered into one frame."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from bpfnb.cluster.engine import MapInfo
from bpfnb.cluster.gather import LABELS, Part, histograms, labelled
from bpfnb.maps.histogram import print_histogram
from bpfnb.sys.constants import MapType, member_or_int

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ClusterMap"]


class Reader(Protocol):
    """What a cluster map reads through: its object's calls to the engines."""

    @property
    def closed(self) -> bool: ...

    def read(self, map_name: str, method: str, kwargs: dict[str, Any]) -> list[Part]: ...

    async def read_async(
        self, map_name: str, method: str, kwargs: dict[str, Any]
    ) -> list[Part]: ...


class ClusterMap:
    """A map as loaded on every engine of a cluster object.

    ``to_frame()`` and ``to_histogram()`` read it on each engine (in parallel) and return one
    DataFrame whose ``host`` and ``engine`` columns say where each row comes from; an engine
    that fails is left out and reported in the object's ``failures``. Each read has an
    awaitable twin (``to_frame_async``...) that live views use.
    """

    #: The columns that label a gathered row besides the map's own key.
    label_columns = LABELS

    def __init__(self, owner: Reader, info: MapInfo) -> None:
        self.owner = owner
        self.name = info.name
        self.type: MapType | int = member_or_int(MapType, info.type)
        self.type_name = info.type_name
        self.key_type = info.key_type
        self.value_type = info.value_type
        self.max_entries = info.max_entries
        self.per_cpu = info.per_cpu
        self.event_type = info.event_type

    @property
    def closed(self) -> bool:
        return self.owner.closed

    @property
    def key_type_name(self) -> str:
        return self.key_type.type_name

    @property
    def value_type_name(self) -> str:
        return self.value_type.type_name

    def to_frame(self, **kwargs: Any) -> pd.DataFrame:
        """Every engine's ``Map.to_frame(**kwargs)``, with ``host`` and ``engine`` columns."""
        return labelled(self.owner.read(self.name, "to_frame", kwargs))

    async def to_frame_async(self, **kwargs: Any) -> pd.DataFrame:
        """:meth:`to_frame`, awaited: the loop runs while the engines answer."""
        return labelled(await self.owner.read_async(self.name, "to_frame", kwargs))

    def to_histogram(
        self,
        kind: str = "log2",
        bucket: str | None = None,
        slot: str | None = None,
        unit: str | None = None,
        merged: bool = False,
    ) -> pd.DataFrame:
        """Every engine's ``Map.to_histogram()``, aligned by bucket: one row per host, engine
        and ``[bucket,] slot`` (``host, engine, [bucket,] slot, low, high, count``). With
        ``merged``, the counts summed over the engines, shaped as one engine's histogram."""
        kwargs = _histogram_args(kind, bucket, slot, unit)
        return histograms(self.owner.read(self.name, "to_histogram", kwargs), merged)

    async def to_histogram_async(
        self,
        kind: str = "log2",
        bucket: str | None = None,
        slot: str | None = None,
        unit: str | None = None,
        merged: bool = False,
    ) -> pd.DataFrame:
        """:meth:`to_histogram`, awaited."""
        kwargs = _histogram_args(kind, bucket, slot, unit)
        return histograms(await self.owner.read_async(self.name, "to_histogram", kwargs), merged)

    def print_log2_hist(
        self, val_type: str = "value", strip_leading_zero: bool = False, unit: str | None = None
    ) -> None:
        """Print the log2 histogram of all engines together, as bcc's ``print_log2_hist``."""
        frame = self.to_histogram("log2", merged=True)
        print_histogram(frame, "log2", val_type, strip_leading_zero=strip_leading_zero, unit=unit)

    def print_linear_hist(
        self, val_type: str = "value", strip_leading_zero: bool = False, unit: str | None = None
    ) -> None:
        """Print the linear histogram of all engines together, as bcc's ``print_linear_hist``."""
        frame = self.to_histogram("linear", merged=True)
        print_histogram(frame, "linear", val_type, strip_leading_zero=strip_leading_zero, unit=unit)

    def __repr__(self) -> str:
        state = ", closed" if self.closed else ""
        return (
            f"<ClusterMap {self.name!r} [{self.type_name}] {self.key_type_name} -> "
            f"{self.value_type_name}, max_entries={self.max_entries}{state}>"
        )


def _histogram_args(
    kind: str, bucket: str | None, slot: str | None, unit: str | None
) -> dict[str, Any]:
    args: dict[str, Any] = {"kind": kind, "bucket": bucket, "slot": slot, "unit": unit}
    return {key: value for key, value in args.items() if value is not None}
