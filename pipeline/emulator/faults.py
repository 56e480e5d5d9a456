"""Faults the emulator can inject, so a newcomer (and a test) sees checks turn Bad on demand.

A fault starts at a minute of a run and lasts to its end. Kinds:

| kind | what happens from `at` minutes | keys (defaults) |
| --- | --- | --- |
| `hot_fastor` | one FastOR fires in 20 % of events (L0; 17 % at L1), large amplitudes | `id` (1000) |
| `dead_supermodule` | an EMC supermodule's FastORs record nothing | `sm` (5) |
| `tpc_sector` | a TPC sector keeps a fraction of its tracks | `sector` (11; A 0-17, C 18-35), `keep` (0.2) |
| `low_rate` | the event rate of every detector drops | `factor` (0.1) |

Every fault takes `at` (minutes since start of run, default 1.5) and optionally `run` (one run number;
default every run). A spec string lists faults separated by `;`, each `kind[:key=value...]`, e.g.
`hot_fastor:id=1000:at=2;low_rate:factor=0.2:at=5:run=300001`. `none` injects nothing; `demo` injects
one fault per run, the four kinds in turn (run index 0 a hot FastOR, 1 a dead supermodule, ...), each
from minute `DEMO_START_MINUTE`, so a check turns Bad within the first run.

Faults are a pure function of (run, step): what was filled stays exactly reproducible, so
`SyntheticRuns.filled_between` keeps telling the truth with faults on.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from pipeline.emulator.detectors import Increment
from pipeline.emulator.detectors_emc import (
    N_COLS,
    PREFIX,
    SUPERMODULE_BOXES,
    fastor_position,
)
from pipeline.emulator.detectors_tpc import CHARGES, TRACK_PROJECTIONS, track_histogram_name

KINDS: tuple[str, ...] = ("hot_fastor", "dead_supermodule", "tpc_sector", "low_rate")
DEMO_START_MINUTE = 1.5
_DEFAULTS: dict[str, dict[str, float]] = {
    "hot_fastor": {"id": 1000},
    "dead_supermodule": {"sm": 5},
    "tpc_sector": {"sector": 11, "keep": 0.2},
    "low_rate": {"factor": 0.1},
}
_SUBSYSTEMS = {"hot_fastor": ("EMC",), "dead_supermodule": ("EMC",), "tpc_sector": ("TPC",)}
# Hits per event of a hot FastOR, as the built-in hot ones (`detectors_emc`).
_HOT_HITS_PER_EVENT = {"L0": 0.2, "L1": 0.17}
_HOT_LARGE_FRACTION = 0.05
_HOT_MEAN_AMPLITUDE = 80.0
_N_TPC_SECTORS = 18


class FaultSpecError(ValueError):
    """A fault spec that cannot be understood; the message names the bad part."""


@dataclass(frozen=True)
class Fault:
    """One injected fault: its kind, the minute it starts, its parameters, and the run it is in (None:
    every run)."""

    kind: str
    at_minute: float = DEMO_START_MINUTE
    parameters: Mapping[str, float] = field(default_factory=dict)
    run: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FaultSpecError(f"unknown fault kind {self.kind!r}; known: {', '.join(KINDS)}")
        if not self.at_minute >= 0:
            raise FaultSpecError(f"{self.kind}: 'at' must be >= 0 minutes, got {self.at_minute}")
        unknown = set(self.parameters) - set(_DEFAULTS[self.kind])
        if unknown:
            raise FaultSpecError(f"{self.kind}: unknown key(s) {sorted(unknown)}")
        values = {**_DEFAULTS[self.kind], **self.parameters}
        object.__setattr__(self, "parameters", values)
        _validate(self.kind, values)

    def __getitem__(self, key: str) -> float:
        return self.parameters[key]

    def affects(self, subsystem: str) -> bool:
        return subsystem in _SUBSYSTEMS.get(self.kind, (subsystem,))

    def describe(self) -> str:
        keys = ", ".join(f"{key}={value:g}" for key, value in self.parameters.items())
        where = f" in run {self.run}" if self.run is not None else ""
        return f"{self.kind} ({keys}) from minute {self.at_minute:g}{where}"


def _validate(kind: str, values: Mapping[str, float]) -> None:
    if kind == "hot_fastor" and not 0 <= values["id"] < N_COLS * 104:
        raise FaultSpecError(f"hot_fastor: id must be a FastOR id 0-{N_COLS * 104 - 1}, got {values['id']:g}")
    if kind == "dead_supermodule" and not 0 <= values["sm"] < len(SUPERMODULE_BOXES):
        raise FaultSpecError(
            f"dead_supermodule: sm must be 0-{len(SUPERMODULE_BOXES) - 1}, got {values['sm']:g}"
        )
    if kind == "tpc_sector":
        if not 0 <= values["sector"] < 2 * _N_TPC_SECTORS:
            raise FaultSpecError(f"tpc_sector: sector must be 0-35, got {values['sector']:g}")
        if not 0 <= values["keep"] <= 1:
            raise FaultSpecError(f"tpc_sector: keep must be within [0, 1], got {values['keep']:g}")
    if kind == "low_rate" and not 0 <= values["factor"] <= 1:
        raise FaultSpecError(f"low_rate: factor must be within [0, 1], got {values['factor']:g}")


@dataclass(frozen=True)
class FaultPlan:
    """Which faults are on in which run: explicit ones, or the demo's one per run."""

    faults: tuple[Fault, ...] = ()
    demo: bool = False

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """A plan from a spec string (see the module docstring); FaultSpecError names what is wrong."""
        spec = spec.strip()
        if spec in ("", "none"):
            return cls()
        if spec == "demo":
            return cls(demo=True)
        faults = []
        for part in filter(None, (piece.strip() for piece in spec.split(";"))):
            kind, *pairs = part.split(":")
            values: dict[str, float] = {}
            for pair in pairs:
                key, sep, text = pair.partition("=")
                if not sep:
                    raise FaultSpecError(f"{part!r}: expected key=value, got {pair!r}")
                try:
                    values[key.strip()] = float(text)
                except ValueError:
                    raise FaultSpecError(f"{part!r}: {key} must be a number, got {text!r}") from None
            at_minute = values.pop("at", DEMO_START_MINUTE)
            run = values.pop("run", None)
            faults.append(Fault(kind.strip(), at_minute, values, None if run is None else int(run)))
        return cls(tuple(faults))

    def in_run(self, run_index: int, run_number: int) -> list[Fault]:
        """The faults of one run (started or not)."""
        if self.demo:
            return [Fault(KINDS[run_index % len(KINDS)])]
        return [fault for fault in self.faults if fault.run in (None, run_number)]

    def active(self, run_index: int, run_number: int, minute: float, subsystem: str) -> list[Fault]:
        """The faults on at `minute` of the run that touch `subsystem`."""
        return [
            fault
            for fault in self.in_run(run_index, run_number)
            if minute >= fault.at_minute and fault.affects(subsystem)
        ]


def rate_factor(faults: list[Fault]) -> float:
    factor = 1.0
    for fault in faults:
        if fault.kind == "low_rate":
            factor *= fault["factor"]
    return factor


def apply_faults(
    faults: list[Fault], increments: dict[str, Increment], rng: np.random.Generator
) -> dict[str, Increment]:
    """The increments of one step with the (non-rate) faults applied; the input is not changed."""
    for fault in faults:
        if fault.kind == "hot_fastor":
            increments = _hot_fastor(int(fault["id"]), increments, rng)
        elif fault.kind == "dead_supermodule":
            increments = _dead_supermodule(int(fault["sm"]), increments)
        elif fault.kind == "tpc_sector":
            increments = _tpc_sector(int(fault["sector"]), fault["keep"], increments, rng)
    return increments


def fault_rng(seed: int, run_number: int, step_index: int, subsystem: str) -> np.random.Generator:
    """The faults' own random stream: the detectors' streams stay as they were without faults."""
    entropy = [seed, run_number, step_index, zlib.crc32(subsystem.encode()), 0xFA417]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _copy(increment: Increment) -> list:
    return [increment.values_flow.copy(), increment.variances_flow.copy(), increment.entries]


def _supermodule_of(col: int, row: int) -> tuple[int, int, int] | None:
    """(supermodule, local col, local row) of a FastOR position, or None in the PHOS hole."""
    for sm, col0, ncols, row0, nrows in SUPERMODULE_BOXES:
        if col0 <= col < col0 + ncols and row0 <= row < row0 + nrows:
            return sm, col - col0, row - row0
    return None


def _hot_fastor(
    fastor: int, increments: dict[str, Increment], rng: np.random.Generator
) -> dict[str, Increment]:
    events = increments.get(f"{PREFIX}Events")
    if events is None:
        return increments
    n_events = float(events.values_flow[1])
    col, row = fastor_position(fastor)
    located = _supermodule_of(col, row)
    out = dict(increments)
    for level, per_event in _HOT_HITS_PER_EVENT.items():
        hits = int(rng.poisson(n_events * per_event))
        large = int(rng.binomial(hits, _HOT_LARGE_FRACTION))
        amplitude = float(hits * _HOT_MEAN_AMPLITUDE)
        for name, count, bin_index in (
            (f"{PREFIX}FastOR{level}", hits, (fastor + 1,)),
            (f"{PREFIX}FastOR{level}LargeAmp", large, (fastor + 1,)),
        ):
            out[name] = _add(out[name], bin_index, count, count)
        out[f"{PREFIX}FastOR{level}Amp"] = _add(
            out[f"{PREFIX}FastOR{level}Amp"],
            (col + 1, row + 1),
            amplitude,
            2 * amplitude * _HOT_MEAN_AMPLITUDE,
        )
        if located is not None:
            sm, local_col, local_row = located
            local = (local_col + 1, local_row + 1)
            out[f"{PREFIX}FastOR{level}_SM{sm}"] = _add(
                out[f"{PREFIX}FastOR{level}_SM{sm}"], local, hits, hits
            )
            out[f"{PREFIX}FastOR{level}LargeAmp_SM{sm}"] = _add(
                out[f"{PREFIX}FastOR{level}LargeAmp_SM{sm}"], local, large, large
            )
    return out


def _add(increment: Increment, index: tuple[int, ...], value: float, variance: float) -> Increment:
    values, variances, entries = _copy(increment)
    values[index] += value
    variances[index] += variance
    return Increment(values, variances, entries + (value if value == int(value) else 0.0))


def _dead_supermodule(sm: int, increments: dict[str, Increment]) -> dict[str, Increment]:
    _, col0, ncols, row0, nrows = SUPERMODULE_BOXES[sm]
    out = dict(increments)
    for name, increment in increments.items():
        if not name.startswith(PREFIX):
            continue
        if name.endswith(f"_SM{sm}"):
            out[name] = Increment(
                np.zeros_like(increment.values_flow), np.zeros_like(increment.variances_flow), 0.0
            )
        elif name in {f"{PREFIX}FastOR{level}{kind}" for level in ("L0", "L1") for kind in ("", "LargeAmp")}:
            values, variances, entries = _copy(increment)
            ids = np.array(
                [row * N_COLS + col for row in range(row0, row0 + nrows) for col in range(col0, col0 + ncols)]
            )
            entries -= float(values[ids + 1].sum())
            values[ids + 1] = 0.0
            variances[ids + 1] = 0.0
            out[name] = Increment(values, variances, max(entries, 0.0))
        elif increment.values_flow.shape == (N_COLS + 2, 104 + 2):
            # The 48 x 104 FastOR maps (Amp, L0 time): nothing from the dead supermodule.
            values, variances, entries = _copy(increment)
            box = (slice(col0 + 1, col0 + ncols + 1), slice(row0 + 1, row0 + nrows + 1))
            values[box] = 0.0
            variances[box] = 0.0
            out[name] = Increment(values, variances, entries)
    return out


def _tpc_sector(
    sector: int, keep: float, increments: dict[str, Increment], rng: np.random.Generator
) -> dict[str, Increment]:
    """Thin the tracks of one sector (and side) in the η-φ TH3s (axes x, η, φ), then redo `all`."""
    a_side = sector < _N_TPC_SECTORS
    phi_bin = sector % _N_TPC_SECTORS + 1
    out = dict(increments)
    for projection in TRACK_PROJECTIONS:
        if not projection.endswith("_5_6"):
            continue  # only the projections with φ on z
        names = {charge: track_histogram_name(charge, projection) for charge in CHARGES}
        if not all(name in increments for name in names.values()):
            continue
        thinned = {}
        for charge in ("pos", "neg"):
            values, variances, entries = _copy(increments[names[charge]])
            n_eta = values.shape[1] - 2
            # η has 30 bins over [-1.5, 1.5]: bins 16-30 are the A side (η > 0), 1-15 the C side.
            eta_bins = slice(n_eta // 2 + 1, n_eta + 1) if a_side else slice(1, n_eta // 2 + 1)
            region = values[:, eta_bins, phi_bin]
            kept = rng.binomial(region.astype(np.int64), keep).astype(np.float64)
            entries -= float(region.sum() - kept.sum())
            values[:, eta_bins, phi_bin] = kept
            variances[:, eta_bins, phi_bin] = kept  # unweighted fills
            thinned[charge] = Increment(values, variances, entries)
            out[names[charge]] = thinned[charge]
        out[names["all"]] = Increment(
            thinned["pos"].values_flow + thinned["neg"].values_flow,
            thinned["pos"].variances_flow + thinned["neg"].variances_flow,
            thinned["pos"].entries + thinned["neg"].entries,
        )
    return out
