"""The one histogram type the whole project speaks, whatever the histogram came from.

Decoded TMessages, stored Parquet rows and emulator output all become a `Histogram`; subtraction,
scaling, plotting, checks and export only ever see this type. Arrays always include the under- and
overflow bins (ROOT's layout), so nothing is lost on a round trip; `values()` hides them by default.

It speaks the UHI `PlottableHistogram` protocol (`kind`, `values`, `variances`, `counts`, `axes`), so
`mplhep.histplot(h)` draws it and `hist.Hist(h)` converts it; `to_hist()` makes that conversion explicit.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import hist

KNOWN_CLASS_PREFIXES = ("TH1", "TH2", "TH3")
AXIS_NAMES = ("x", "y", "z")


class Kind(str, enum.Enum):  # noqa: UP042 - UHI asks for this exact construct (a str, not a StrEnum)
    """What the bins hold (UHI): COUNT for sums of weights, MEAN for profiles (never stored here)."""

    COUNT = "COUNT"
    MEAN = "MEAN"


class AxisTraits(NamedTuple):
    """UHI axis traits: ROOT TH1/TH2/TH3 axes never wrap around and always have continuous bins."""

    circular: bool = False
    discrete: bool = False


class HistogramAxis:
    """One axis as UHI sees it: a sequence of (lower, upper) bin edges, plus a label and traits.

    Flow bins are not part of the sequence (the protocol ignores them); `edges` are the regular bins' edges.
    """

    traits = AxisTraits()

    def __init__(self, edges: np.ndarray, label: str = "", name: str = "") -> None:
        self.edges = edges
        self.label = label
        self.name = name

    def __len__(self) -> int:
        return len(self.edges) - 1

    def __getitem__(self, index: int) -> tuple[float, float]:
        if not isinstance(index, int | np.integer):
            raise TypeError(f"axis index must be an integer, got {index!r}")
        position = int(index) + len(self) if index < 0 else int(index)
        if not 0 <= position < len(self):
            raise IndexError(f"bin {index} out of range for an axis of {len(self)} bins")
        return float(self.edges[position]), float(self.edges[position + 1])

    def __iter__(self) -> Iterator[tuple[float, float]]:
        lower, upper = self.edges[:-1].tolist(), self.edges[1:].tolist()
        return iter(zip(lower, upper, strict=True))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HistogramAxis):
            return NotImplemented
        return self.label == other.label and np.array_equal(self.edges, other.edges)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking sequence, as the protocol's axes

    def __repr__(self) -> str:
        span = f"[{self.edges[0]:g}, {self.edges[-1]:g}]"
        return f"HistogramAxis({len(self)} bins {span}, label={self.label!r})"


@dataclass(frozen=True, eq=False)
class Histogram:
    """A ROOT-style histogram: edges per axis plus contents and variances with flow bins."""

    name: str
    class_name: str
    title: str
    edges: tuple[np.ndarray, ...]
    values_flow: np.ndarray
    variances_flow: np.ndarray
    entries: float = 0.0
    axis_titles: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        expected_shape = tuple(len(e) + 1 for e in self.edges)
        if self.values_flow.shape != expected_shape:
            raise ValueError(
                f"{self.name}: contents shape {self.values_flow.shape} does not match "
                f"edges (expected {expected_shape} with flow bins)"
            )
        if self.variances_flow.shape != expected_shape:
            raise ValueError(f"{self.name}: variances shape {self.variances_flow.shape} mismatch")
        # Always x, y and z titles: a TH1's y title ("counts") is part of what ROOT stores.
        titles = tuple(self.axis_titles)[:3]
        object.__setattr__(self, "axis_titles", titles + ("",) * (3 - len(titles)))

    @property
    def dimension(self) -> int:
        return len(self.edges)

    @property
    def kind(self) -> Kind:
        return Kind.COUNT

    @property
    def axes(self) -> tuple[HistogramAxis, ...]:
        """The UHI axes, labelled with the axis titles ROOT sent."""
        return tuple(
            HistogramAxis(edges, self.axis_titles[index], AXIS_NAMES[index])
            for index, edges in enumerate(self.edges)
        )

    @property
    def weighted(self) -> bool:
        """True when variances differ from the contents (filled with weights, or scaled)."""
        return self.variances_flow is not self.values_flow and not np.array_equal(
            self.variances_flow, self.values_flow
        )

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of regular bins per axis (no flow)."""
        return tuple(len(e) - 1 for e in self.edges)

    def values(self, flow: bool = False) -> np.ndarray:
        return self.values_flow if flow else self.values_flow[_inner(self.dimension)]

    def variances(self, flow: bool = False) -> np.ndarray:
        return self.variances_flow if flow else self.variances_flow[_inner(self.dimension)]

    def counts(self, flow: bool = False) -> np.ndarray:
        """Entries per bin (UHI): the contents when unweighted, else the effective number of entries
        sum(w)^2 / sum(w^2), 0 where nothing was filled."""
        values = self.values(flow)
        if not self.weighted:
            return values
        variances = self.variances(flow)
        return np.divide(
            values * values, variances, out=np.zeros_like(values, dtype=np.float64), where=variances != 0
        )

    def to_hist(self) -> hist.Hist:
        """A `hist.Hist` with the same edges, axis titles and contents, flow bins included.

        Weight storage (values and variances) when the variances differ from the contents; Double
        storage otherwise, where hist takes the variances to be the contents, as here.
        """
        import hist  # only analysts need it; the receivers and the dashboard never import it

        axes = [_hist_axis(axis) for axis in self.axes]
        storage = hist.storage.Weight() if self.weighted else hist.storage.Double()
        converted = hist.Hist(*axes, storage=storage, name=self.name, label=self.title)
        view = converted.view(flow=True)
        if self.weighted:
            view.value = self.values_flow
            view.variance = self.variances_flow
        else:
            view[...] = self.values_flow
        return converted

    def _to_boost_histogram_(self) -> Any:
        """The hook boost-histogram (and so `hist.Hist(h)`) calls to convert a foreign histogram."""
        return self.to_hist()

    def errors(self, flow: bool = False) -> np.ndarray:
        return np.sqrt(np.clip(self.variances(flow), 0.0, None))

    def same_binning(self, other: Histogram) -> bool:
        # `(a == b).all()` rather than np.array_equal: the same answer at a fifth of the cost, which
        # counts when every histogram of every snapshot is subtracted from an earlier one.
        return len(self.edges) == len(other.edges) and all(
            a is b or (a.shape == b.shape and bool((a == b).all()))
            for a, b in zip(self.edges, other.edges, strict=True)
        )

    def __sub__(self, earlier: Histogram) -> Histogram:
        """Contents accumulated since `earlier` (cumulative mergers): values and variances subtract."""
        self._check_compatible(earlier)
        return self._with_contents(
            self.values_flow - earlier.values_flow,
            self.variances_flow - earlier.variances_flow,
            self.entries - earlier.entries,
        )

    def __add__(self, other: Histogram) -> Histogram:
        self._check_compatible(other)
        return self._with_contents(
            self.values_flow + other.values_flow,
            self.variances_flow + other.variances_flow,
            self.entries + other.entries,
        )

    def scaled(self, factor: float) -> Histogram:
        """Contents times `factor`; variances scale with its square, as ROOT's TH1::Scale does."""
        return self._with_contents(
            self.values_flow * factor, self.variances_flow * (factor * factor), self.entries
        )

    @classmethod
    def from_checked_parts(
        cls,
        name: str,
        class_name: str,
        title: str,
        edges: tuple[np.ndarray, ...],
        values_flow: np.ndarray,
        variances_flow: np.ndarray,
        entries: float,
        axis_titles: tuple[str, str, str],
    ) -> Histogram:
        """A histogram whose parts the caller has already checked against each other (shapes of
        `edges` + flow bins, exactly three axis titles), so `__post_init__` is skipped: the fast
        decoder's layout plans prove this once per layout, and the checks would cost it a sixth of a
        histogram's decode."""
        histogram = object.__new__(cls)
        # The instance's dict set whole (past the frozen __setattr__): `__dict__.update(**fields)`
        # built the same dict as keyword arguments, then copied it.
        object.__setattr__(
            histogram,
            "__dict__",
            {
                "name": name,
                "class_name": class_name,
                "title": title,
                "edges": edges,
                "values_flow": values_flow,
                "variances_flow": variances_flow,
                "entries": entries,
                "axis_titles": axis_titles,
            },
        )
        return histogram

    def _with_contents(
        self, values_flow: np.ndarray, variances_flow: np.ndarray, entries: float
    ) -> Histogram:
        """Same binning and titles, new contents. Arithmetic keeps shapes, so no re-validation: a time
        slice does this for hundreds of histograms per request."""
        # Not copy.copy: its generic __reduce_ex__ path costs several times this plain field copy.
        result = object.__new__(type(self))
        result.__dict__.update(self.__dict__)
        object.__setattr__(result, "values_flow", values_flow)
        object.__setattr__(result, "variances_flow", variances_flow)
        object.__setattr__(result, "entries", entries)
        return result

    def _check_compatible(self, other: Histogram) -> None:
        if not self.same_binning(other):
            raise ValueError(f"{self.name}: binning differs from {other.name}; cannot combine")


def _hist_axis(axis: HistogramAxis) -> Any:
    """A Regular hist axis when it reproduces the edges bit for bit, else a Variable one."""
    import hist

    common = {"name": axis.name, "label": axis.label, "underflow": True, "overflow": True}
    edges = axis.edges
    regular = hist.axis.Regular(len(axis), float(edges[0]), float(edges[-1]), **common)
    if np.array_equal(regular.edges, edges):
        return regular
    return hist.axis.Variable(edges, **common)


def _inner(dimension: int) -> tuple[slice, ...]:
    return (slice(1, -1),) * dimension


def dimension_of_class(class_name: str) -> int:
    """1, 2 or 3 for TH1*/TH2*/TH3* (and TProfile-likes), else raise ValueError."""
    if class_name.startswith("TProfile2D"):
        return 2
    if class_name.startswith("TProfile3D"):
        return 3
    if class_name.startswith("TProfile"):
        return 1
    for dimension, prefix in enumerate(KNOWN_CLASS_PREFIXES, start=1):
        if class_name.startswith(prefix):
            return dimension
    raise ValueError(f"unsupported histogram class {class_name!r}")
