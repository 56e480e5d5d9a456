"""The one histogram type the whole project speaks, whatever the histogram came from.

Decoded TMessages, stored Parquet rows and emulator output all become a `Histogram`; subtraction,
scaling, plotting, checks and export only ever see this type. Arrays always include the under- and
overflow bins (ROOT's layout), so nothing is lost on a round trip; `values()` hides them by default,
like the UHI PlottableProtocol that boost-histogram and hist speak.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KNOWN_CLASS_PREFIXES = ("TH1", "TH2", "TH3")


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
    def kind(self) -> str:
        return "COUNT"

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of regular bins per axis (no flow)."""
        return tuple(len(e) - 1 for e in self.edges)

    def values(self, flow: bool = False) -> np.ndarray:
        return self.values_flow if flow else self.values_flow[_inner(self.dimension)]

    def variances(self, flow: bool = False) -> np.ndarray:
        return self.variances_flow if flow else self.variances_flow[_inner(self.dimension)]

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
