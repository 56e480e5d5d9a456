"""What a synthetic detector is: declared histograms plus a pure `fill(step_index, rng)`.

A detector fills, per step ("update period" of an HLT QA component), increments for every histogram it
declares. `fill` depends only on its arguments and on the detector's fixed construction parameters, so
any step can be regenerated bit-exactly later (the run clock relies on that to answer "what was filled
between t0 and t1" without keeping every array). Filling is vectorised: per-bin expectations drawn as
Poisson counts, or per-object samples binned with one `bincount`; never a Python loop over bins.

The concrete detectors live in `detectors_emc`, `detectors_tpc` and `detectors_hlt`; `DETECTORS` at the
bottom of this module maps subsystem names to their classes.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import numpy as np

from pipeline.histogram import Histogram, dimension_of_class

# Charged-particle multiplicity and event-rate scale per beam type, relative to pp. Rough, but enough
# for heavy-ion runs to look busier and slower than pp runs.
MULTIPLICITY_SCALE = {"pp": 1.0, "pPb": 3.0, "Pbp": 3.0, "XeXe": 8.0, "PbPb": 12.0}
EVENT_RATE_SCALE = {"pp": 1.0, "pPb": 0.6, "Pbp": 0.6, "XeXe": 0.3, "PbPb": 0.2}


class Increment(NamedTuple):
    """What one step filled into one histogram: contents and sum of squared weights with flow bins."""

    values_flow: np.ndarray
    variances_flow: np.ndarray
    entries: float


@dataclass(frozen=True)
class Axis:
    """One histogram axis: bin edges and a title."""

    edges: np.ndarray
    title: str = ""

    @classmethod
    def regular(cls, nbins: int, low: float, high: float, title: str = "") -> Axis:
        return cls(np.linspace(low, high, nbins + 1), title)

    @classmethod
    def logarithmic(cls, nbins: int, low: float, high: float, title: str = "") -> Axis:
        return cls(np.geomspace(low, high, nbins + 1), title)

    @classmethod
    def integer_centred(cls, count: int, title: str = "") -> Axis:
        """`count` bins centred on 0..count-1, so bin number - 1 is the integer (ROOT bins from 1)."""
        return cls(np.arange(count + 1, dtype=np.float64) - 0.5, title)

    @property
    def nbins(self) -> int:
        return len(self.edges) - 1


@dataclass(frozen=True)
class HistogramSpec:
    """A declared histogram: everything about it except its contents."""

    name: str
    class_name: str
    title: str
    axes: tuple[Axis, ...]
    axis_titles: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if dimension_of_class(self.class_name) != len(self.axes):
            raise ValueError(f"{self.name}: {self.class_name} needs {len(self.axes)} axes")
        object.__setattr__(self, "axis_titles", tuple(axis.title for axis in self.axes))

    @property
    def edges(self) -> tuple[np.ndarray, ...]:
        return tuple(axis.edges for axis in self.axes)

    @property
    def flow_shape(self) -> tuple[int, ...]:
        return tuple(axis.nbins + 2 for axis in self.axes)

    def zero_increment(self) -> Increment:
        return Increment(np.zeros(self.flow_shape), np.zeros(self.flow_shape), 0.0)

    def histogram(self, increment: Increment | None = None) -> Histogram:
        """A `Histogram` holding `increment` (zeros when None); arrays are copied."""
        increment = increment or self.zero_increment()
        return Histogram(
            name=self.name,
            class_name=self.class_name,
            title=self.title,
            edges=tuple(edges.copy() for edges in self.edges),
            values_flow=np.array(increment.values_flow, dtype=np.float64),
            variances_flow=np.array(increment.variances_flow, dtype=np.float64),
            entries=float(increment.entries),
            axis_titles=self.axis_titles,
        )


def spec(name: str, class_name: str, title: str, *axes: Axis) -> HistogramSpec:
    return HistogramSpec(name, class_name, title, tuple(axes))


class Detector(ABC):
    """A synthetic HLT QA producer for one subsystem.

    Subclasses declare their histograms in `_declare()` and implement `fill()`. Everything random
    about the detector itself (channel gains, dead areas) comes from a fixed per-class seed, so two
    instances are identical detectors; the run-to-run randomness comes only from `fill`'s `rng`.
    """

    subsystem: ClassVar[str]
    base_event_rate_hz: ClassVar[float]
    # Period (s) of the slow luminosity-like oscillation; differs per detector so they do not beat.
    rate_oscillation_s: ClassVar[float] = 300.0

    def __init__(self, step_s: float = 2.0, beam_type: str = "pp", hlt_mode: str = "B") -> None:
        if step_s <= 0:
            raise ValueError(f"step_s must be > 0, got {step_s}")
        self.step_s = float(step_s)
        self.beam_type = beam_type
        self.hlt_mode = hlt_mode
        self.multiplicity_scale = MULTIPLICITY_SCALE.get(beam_type, 1.0)
        self.event_rate_scale = EVENT_RATE_SCALE.get(beam_type, 1.0)
        specs = tuple(self._declare())
        self.specs: dict[str, HistogramSpec] = {s.name: s for s in specs}
        if len(self.specs) != len(specs):
            raise ValueError(f"{self.subsystem}: duplicate histogram names")

    @property
    def names(self) -> list[str]:
        return sorted(self.specs)

    @abstractmethod
    def _declare(self) -> Sequence[HistogramSpec]:
        """Every histogram this detector publishes."""

    @abstractmethod
    def fill(
        self, step_index: int, rng: np.random.Generator, rate_factor: float = 1.0
    ) -> dict[str, Increment]:
        """Increments for every declared histogram filled during step `step_index` of a run;
        `rate_factor` scales the event rate (an injected rate drop)."""

    def event_rate_hz(self, step_index: int) -> float:
        """Drifting event rate: a slow decay (beam intensity) with a luminosity-like wobble."""
        elapsed_s = step_index * self.step_s
        wobble = 1.0 + 0.2 * math.sin(2 * math.pi * elapsed_s / self.rate_oscillation_s)
        wobble += 0.05 * math.sin(2 * math.pi * elapsed_s / 47.0)
        decay = math.exp(-elapsed_s / 7200.0)
        return self.base_event_rate_hz * self.event_rate_scale * wobble * decay

    def events_in_step(self, step_index: int, rng: np.random.Generator, rate_factor: float = 1.0) -> int:
        return int(rng.poisson(self.event_rate_hz(step_index) * self.step_s * rate_factor))

    def empty_histograms(self) -> dict[str, Histogram]:
        return {name: s.histogram() for name, s in self.specs.items()}


# ---------------------------------------------------------------------------------------------
# Filling helpers: all vectorised.


def bin_indices(edges: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """ROOT bin number with flow: 0 underflow, 1..n regular ([low, high)), n+1 overflow (and NaN)."""
    return np.searchsorted(edges, samples, side="right")


def fill_samples(
    spec: HistogramSpec,
    *coordinates: np.ndarray,
    weights: np.ndarray | None = None,
) -> Increment:
    """Bin samples (one array per axis) as repeated `TH1::Fill(x[, y[, z]], w)` calls would."""
    if len(coordinates) != len(spec.axes):
        raise ValueError(f"{spec.name}: {len(spec.axes)} coordinates needed")
    shape = spec.flow_shape
    indices = [bin_indices(axis.edges, np.asarray(c)) for axis, c in zip(spec.axes, coordinates, strict=True)]
    flat = np.ravel_multi_index(indices, shape) if indices[0].size else np.zeros(0, dtype=np.intp)
    size = math.prod(shape)
    if weights is None:
        counts = np.bincount(flat, minlength=size).astype(np.float64).reshape(shape)
        return Increment(counts, counts.copy(), float(flat.size))
    weights = np.asarray(weights, dtype=np.float64)
    values = np.bincount(flat, weights=weights, minlength=size).reshape(shape)
    variances = np.bincount(flat, weights=weights * weights, minlength=size).reshape(shape)
    return Increment(values, variances, float(flat.size))


def poisson_counts(rng: np.random.Generator, expected_flow: np.ndarray) -> Increment:
    """Unweighted fills whose per-bin means are `expected_flow` (flow bins included)."""
    counts = rng.poisson(expected_flow).astype(np.float64)
    return Increment(counts, counts.copy(), float(counts.sum()))


def counts_increment(counts_flow: np.ndarray) -> Increment:
    """Unweighted fills given per-bin counts: variances equal the counts."""
    counts = np.asarray(counts_flow, dtype=np.float64)
    return Increment(counts, counts.copy(), float(counts.sum()))


def geometric_sums(
    rng: np.random.Generator, counts: np.ndarray, offset: float, mean_excess: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and sum of squares of `counts` integer amplitudes `offset + g`, g geometric (>= 1).

    The sum is exact in distribution (a negative binomial); the sum of squares is its expectation
    given the sum, which is all a variance needs. Amplitudes are integers (ADC counts), so sums stay
    exact in float32 (TH2F) and float64 alike.
    """
    counts = np.asarray(counts, dtype=np.int64)
    p = 1.0 / mean_excess
    failures = rng.negative_binomial(np.maximum(counts, 1), p) * (counts > 0)
    sums = counts * (offset + 1.0) + failures
    mean_amplitude = offset + mean_excess
    mean_square = offset * offset + 2 * offset * mean_excess + (2 - p) / (p * p)
    sums_of_squares = np.rint(sums * (mean_square / mean_amplitude))
    return sums.astype(np.float64), sums_of_squares


def with_flow(inner: np.ndarray) -> np.ndarray:
    """Embed an array of regular bins in zero flow bins."""
    padded = np.zeros(tuple(n + 2 for n in inner.shape))
    padded[(slice(1, -1),) * inner.ndim] = inner
    return padded


def axis_probabilities(axis: Axis, cdf) -> np.ndarray:
    """Probability per flow bin of a distribution given its vectorised CDF."""
    cumulative = np.concatenate(([0.0], cdf(axis.edges), [1.0]))
    return np.clip(np.diff(cumulative), 0.0, None)


def template_from_samples(
    spec: HistogramSpec, *coordinates: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """A normalised shape (flow bins included) measured once from a large sample at start-up."""
    values = fill_samples(spec, *coordinates, weights=weights).values_flow
    return values / values.sum()


def moyal_samples(rng: np.random.Generator, size: int, location: float, scale: float) -> np.ndarray:
    """Landau-like energy-loss samples: -log of a chi-square(1) variable is Moyal distributed."""
    return location - scale * np.log(rng.standard_normal(size) ** 2)


def truncated_pareto(rng: np.random.Generator, size: int, minimum: float, index: float) -> np.ndarray:
    """Falling power-law spectrum dN/dx ~ x^-(index+1) above `minimum`."""
    return minimum * (1.0 - rng.random(size)) ** (-1.0 / index)


# The registry is built last: the detector modules import the framework above from this module.
# `pipeline.emulator/__init__` imports this module first, so these imports never see it half-built.
from pipeline.emulator.detectors_emc import EMCDetector  # noqa: E402
from pipeline.emulator.detectors_hlt import HLTDetector  # noqa: E402
from pipeline.emulator.detectors_tpc import TPCDetector  # noqa: E402

DETECTORS: dict[str, type[Detector]] = {
    EMCDetector.subsystem: EMCDetector,
    TPCDetector.subsystem: TPCDetector,
    HLTDetector.subsystem: HLTDetector,
}


def make_detector(
    subsystem: str, step_s: float = 2.0, beam_type: str = "pp", hlt_mode: str = "B"
) -> Detector:
    """A detector for `subsystem` (a key of DETECTORS); KeyError names the known ones."""
    try:
        detector_class = DETECTORS[subsystem]
    except KeyError:
        raise KeyError(f"unknown subsystem {subsystem!r}; known: {sorted(DETECTORS)}") from None
    return detector_class(step_s=step_s, beam_type=beam_type, hlt_mode=hlt_mode)
