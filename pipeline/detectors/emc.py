"""EMC (EMCal + DCal trigger QA) plug-in: the original OVERWATCH EMC groups, names and drawing, hot
FastOR detection, the TRU grid overlay and the EMCal-vs-DCal patch-amplitude stacks.

Names come from the EMCal trigger QA task (`EMCTRQA_hist...`) and the EMCal cluster/cell QA
(`hCluster...`, `hIDvs...`); see overwatch-features.md section 2.4.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pipeline.detectors import checks as generic
from pipeline.detectors.base import (
    CheckParameters,
    CheckResult,
    CheckSpec,
    DetectorPlugin,
    DrawHints,
    Group,
    LineSegment,
    MarkerStyle,
    SecondaryAxis,
    Stack,
    TrendSpec,
    scale_by_events_if_requested,
)
from pipeline.detectors.names import cleaned_name, display_name
from pipeline.histogram import Histogram
from pipeline.processing.options import OptionSpec, ProcessingOptions
from pipeline.wording import counted

SUBSYSTEM = "EMC"
NAME_PREFIX = "EMCTRQA_hist"
EVENTS_HISTOGRAM = "EMCTRQA_histEvents"

# Order is priority: a histogram goes to the first group whose selector it contains, so the
# per-supermodule groups come before the broad "FastOR" and "EMC" ones.
GROUPS: tuple[Group, ...] = (
    Group("FEE vs TRU", "FEEvsTRU_SM", grid=True),
    Group("FEE vs STU", "FEEvsSTU_SM", grid=True),
    Group("FastOR L0 (hits with ADC > 0)", "FastORL0_SM", grid=True),
    Group("FastOR L0 Amp (hits weighted with ADC value)", "FastORL0Amp_SM", grid=True),
    Group("FastOR L0 Large Amp (hits above 400 ADC)", "FastORL0LargeAmp_SM", grid=True),
    Group("FastOR L1 (hits with ADC > 0)", "FastORL1_SM", grid=True),
    Group("FastOR L1 Amp (hits weighted with ADC value)", "FastORL1Amp_SM", grid=True),
    Group("FastOR L1 Large Amp (hits above 400 ADC)", "FastORL1LargeAmp_SM", grid=True),
    Group("EMCal cluster level", "Cluster"),
    Group("EMCal cell level", "hIDvs"),
    Group("EMCal vs DCal Median", "EMCalMedianVsDCalMedian"),
    Group("Gamma Trigger Low", "GAL"),
    Group("Gamma Trigger High", "GAH"),
    Group("Jet Trigger Low", "JEL"),
    Group("Jet Trigger High", "JEH"),
    Group("L0", "EMCL0"),
    Group("Background", "BKG"),
    Group("FastOR", "FastOR"),
    Group("Other EMC", "EMC"),
    # Only when EMC has its own receiver: from HLT files it would collect every unrelated histogram.
    Group("Non EMC", ""),
)

# EMC's histograms in an HLT file (which holds every detector's): the trigger QA task's, the cluster and
# cell QA's, and names starting with EMC. Not "Cluster" alone: the HLT's fHistClusterChargeMax/Tot and
# fHistTPC*ClustersRowPhi are not EMC's.
OWN_NAMES = r"EMCTRQA_|hCluster|hIDvs|^EMC"

# The summary FastOR histograms (TH1 vs FastOR id, or TH2 vs position), by exact name.
FASTOR_NAMES: frozenset[str] = frozenset(
    f"EMCTRQA_histFastOR{level}{kind}" for level in ("L0", "L1") for kind in ("", "Amp", "LargeAmp")
)

# EMCal L1 ADC counts to GeV, for the energy axis over the patch amplitude spectra.
EMC_L1_ADC_TO_GEV = 0.07874
ENERGY_AXIS = SecondaryAxis("Energy (GeV)", EMC_L1_ADC_TO_GEV)
ENERGY_AXIS_TOKENS = ("EMCalPatchAmp", "EMCalMaxPatchAmp", "DCalPatchAmp", "DCalMaxPatchAmp")
# The original's legacy rule: log y and a grid for these spectra, old names included.
PATCH_SPECTRUM_TOKENS = ("EMCalPatchEnergy", "DCalPatchEnergy", *ENERGY_AXIS_TOKENS)

# EMCal token -> the DCal token that names the partner spectrum.
STACK_PARTNER_TOKENS = (("EMCalMaxPatchAmp", "DCalMaxPatchAmp"), ("EMCalPatchAmp", "DCalPatchAmp"))
EMCAL_STYLE = MarkerStyle(color="#cc0000", symbol="circle", size=0.8)  # ROOT kRed+1, full circle
DCAL_STYLE = MarkerStyle(color="#0000cc", symbol="circle-open", size=0.8)  # ROOT kBlue+1, open circle
FASTOR_STYLE = MarkerStyle(color="#0000cc", symbol="circle", size=0.8)

# Default hot FastOR thresholds, in entries per event when scaling is on. The original called them
# "mostly set as a proof of concept" (Aug 2018); users override them per request.
LARGE_AMP_THRESHOLD = 1e-7
AMP_THRESHOLD = 1e4
HITS_THRESHOLD = 1e-2

# What the QC service trends for EMC (the original's 30 trended histograms x {max, mean, stdDev}),
# plus the number of hot FastORs and the event rate.
TRENDS: tuple[TrendSpec, ...] = (
    TrendSpec(r"^EMCTRQA_hist(AmpEdgePos|MaxEdgePos)", ("mean", "std_dev", "maximum", "entries")),
    TrendSpec(r"^EMCTRQA_histFastOR(L0|L0Amp|L0LargeAmp|L0Time|L1|L1Amp|L1LargeAmp)$"),
    TrendSpec(r"^EMCTRQA_histFastOR(L0|L1)(Amp|LargeAmp)?$", ("hot_channels",)),
    TrendSpec(f"^{EVENTS_HISTOGRAM}$", ("entries", "events_per_minute")),
)

OUTLIER_OPTION = OptionSpec(
    name="outlier_n_sigma",
    kind=float,
    default=0.0,
    minimum=0.0,
    maximum=10.0,
    description=(
        "Flag per-supermodule bins further than this many standard deviations from the mean of all "
        "bins (0 = off; the original's proof of concept used 1)."
    ),
)

_CLUSTER_PRETTY_NAMES = {
    "hClusterCells": "Number of cells/cluster",
    "hClusterEneCells": "Cluster E vs # of cells/cluster",
    "hClusterEneEMCAL": "Cluster E",
    "hClusterEneVsTime": "Cluster E vs Time",
    "hClusterEtaVsPhi": "Cluster Eta vs Phi",
    "hClusterInvariantMass": "Cluster Invariant Mass",
    "hClusterM02": "Cluster M02",
    "hClusterM20": "Cluster M20",
    "hClusterNumVsV0": "Number of Clusters vs V0 amplitude",
}

# Per-histogram looks for the cluster and cell QA, keyed by the name without any "EMCTRQA_" prefix.
_EXACT_NAME_HINTS: dict[str, dict[str, Any]] = {
    "hClusterCells": {"x_title": "Number of cells/cluster", "y_title": "Number", "log_y": True},
    "hClusterEneCells": {
        "x_title": "Cluster Energy (GeV)",
        "y_title": "dN_{cells/cluster}/dE",
        "log_x": True,
        "log_z": True,
    },
    "hClusterEneEMCAL": {"x_title": "Cluster Energy (GeV)", "y_title": "dN_{cluster}/dE", "log_y": True},
    "hClusterEneVsTime": {"x_title": "Cluster Energy (GeV)", "y_title": "Cluster time (ns)"},
    "hClusterInvariantMass": {"x_title": "M_{γγ} (GeV/c^{2})", "y_title": "Counts/1 MeV"},
    "hClusterM02": {"x_title": "M_{02}", "y_title": "dN/dM_{02}", "log_y": True},
    "hClusterM20": {"x_title": "M_{20}", "y_title": "dN/dM_{20}", "log_y": True},
    "hClusterNumVsV0": {
        "x_title": "Number of clusters",
        "x_range": (0.0, 1000.0),
        "y_title": "V0 amplitude",
        "y_range": (0.0, 500.0),
        "log_z": True,
    },
    "hIDvsAmpHG": {"log_x": True, "log_z": True},
    "hIDvsTimeHG": {"log_z": True},
}

_SUPERMODULE_SUFFIX = re.compile(r"_SM(\d+)$")


def supermodule_number(name: str) -> int | None:
    """N for a per-supermodule name ending in `_SM<N>`, else None."""
    match = _SUPERMODULE_SUFFIX.search(name)
    return int(match.group(1)) if match else None


def sort_supermodules_in_physical_order(names: Sequence[str]) -> list[str]:
    """Per-supermodule names in the order the detector is built, read row by row (two SMs per row):
    DCal 18 19, 16 17, 14 15, 12 13, then EMCal 10 11, ..., 0 1.

    This is the order the original's `sortSMsInPhysicalOrder` produced for a full set. Sorting by
    (row, side) instead of swapping neighbours in a reversed list keeps every supermodule in row order
    when one is missing (the original then paired supermodules from different rows). Names without an
    `_SM<N>` suffix follow, in their given order.
    """
    numbered = [(number, name) for name in names if (number := supermodule_number(name)) is not None]
    unnumbered = [name for name in names if supermodule_number(name) is None]
    numbered.sort(key=lambda item: (-(item[0] // 2), item[0] % 2))
    return [name for _, name in numbered] + unnumbered


def tru_grid_segments() -> tuple[LineSegment, ...]:
    """TRU boundaries over the 48-column x 104-row FastOR map, as (x, y) = (column, row) segments."""
    segments: list[LineSegment] = []
    # Full EMCal supermodules (rows 0-60): one TRU is 8 columns x 12 rows.
    segments += [((col, 0), (col, 60)) for col in range(8, 48, 8)]
    segments += [((0, row), (48, row)) for row in range(12, 61, 12)]
    # 1/3 EMCal supermodules (rows 60-64): one TRU per side.
    segments += [((0, 64), (48, 64)), ((24, 60), (24, 64))]
    # 2/3 DCal supermodules (rows 64-100): no TRUs over the PHOS hole (columns 16-32).
    segments += [((col, 64), (col, 100)) for col in (8, 16, 32, 40)]
    for row in (76, 88):
        segments += [((0, row), (16, row)), ((32, row), (48, row))]
    # 1/3 DCal supermodules (rows 100-104).
    segments += [((0, 100), (48, 100)), ((24, 100), (24, 104))]
    return tuple(((float(x0), float(y0)), (float(x1), float(y1))) for (x0, y0), (x1, y1) in segments)


TRU_GRID: tuple[LineSegment, ...] = tru_grid_segments()


def _lookup_key(name: str) -> str:
    # Cluster/cell QA names are matched exactly; tolerate the trigger QA task's "EMCTRQA_" prefix.
    return name.removeprefix("EMCTRQA_")


_PATCH_SPECTRUM = re.compile(
    r"^EMCTRQA_hist(EMCal|DCal)(Max)?PatchAmp(EMC[A-Z0-9]+?)(Online|Offline|Recalc)$"
)


def emc_explicit_name(name: str) -> str | None:
    """The EMC experts' name for a histogram, or None to let its ROOT title speak: the cluster and cell
    QA names, "FEE vs TRU · SM 18" for per-supermodule maps (the group's title, short) and the patch
    amplitude spectra by calorimeter, trigger and source."""
    key = _lookup_key(name)
    if key in _CLUSTER_PRETTY_NAMES:
        return _CLUSTER_PRETTY_NAMES[key]
    if "hIDvsAmp" in name:
        # The last two characters say which gain: "LG" or "HG".
        return f"Cell ID vs Amplitude - {name[-2:]}"
    if "hIDvsTime" in name:
        return f"Cell ID vs Time - {name[-2:]}"
    sm_number = supermodule_number(name)
    if sm_number is not None:
        group = next((g for g in GROUPS if g.grid and g.selector in name), None)
        if group is not None:
            return f"{group.title.split(' (')[0]} · SM {sm_number}"
    if (spectrum := _PATCH_SPECTRUM.match(name)) is not None:
        calorimeter, is_max, trigger, source = spectrum.groups()
        kind = "max patch amplitude" if is_max else "patch amplitude"
        return f"{calorimeter} {kind} ({trigger} {source})"
    return None


def is_scaled_by_events(name: str) -> bool:
    """The original's per-event scaling: per-SM maps, patch edge positions, the FastOR summaries and
    the patch amplitude spectra (but not background-subtracted or early "EMCRE" ones)."""
    return "SM" in name or "EdgePos" in name or name in FASTOR_NAMES or _is_patch_amplitude_spectrum(name)


def _is_patch_amplitude_spectrum(name: str) -> bool:
    return "PatchAmp" in name and "Subtracted" not in name and "EMCRE" not in name


def emc_draw_hints(histogram: Histogram) -> DrawHints:
    name = histogram.name
    is_2d = histogram.dimension == 2
    # Every EMC TH2 is a colour map with a log z axis; titles stay hidden unless they say something.
    overrides: dict[str, Any] = {"colz": is_2d, "log_z": is_2d}

    sm_number = supermodule_number(name)
    if sm_number is not None:
        overrides.update(title=f"SM {sm_number}", show_title=True)
    if "SM" in name and "FEE" in name:
        overrides.update(log_z=True, x_range=(0.0, 250.0), y_range=(0.0, 20.0))
    if "hIDvsAmp" in name:
        overrides.update(x_title="Cell amplitude", y_title="Cell ID")
    if "hIDvsTime" in name:
        overrides.update(x_title="Cell time (ns)", y_title="Cell ID")
    overrides.update(_EXACT_NAME_HINTS.get(_lookup_key(name), {}))

    if is_2d and ("EdgePos" in name or name in FASTOR_NAMES):
        overrides["overlays"] = TRU_GRID
    if name in FASTOR_NAMES and histogram.dimension == 1:
        overrides["marker"] = FASTOR_STYLE
    if _is_patch_amplitude_spectrum(name) or any(token in name for token in PATCH_SPECTRUM_TOKENS):
        overrides.update(log_y=True, grid_lines=True)
    if any(token in name for token in ENERGY_AXIS_TOKENS):
        overrides["secondary_x_axis"] = ENERGY_AXIS
    pretty_name = display_name(name, histogram.title, emc_explicit_name(name))
    return replace(DrawHints(pretty_name=pretty_name), **overrides)


def default_hot_fastor_threshold(name: str) -> float:
    if "LargeAmp" in name:
        return LARGE_AMP_THRESHOLD
    if "Amp" in name:
        return AMP_THRESHOLD
    return HITS_THRESHOLD


def hot_fastor_check(
    histogram: Histogram,
    options: ProcessingOptions,
    n_events: float | None,
    parameters: CheckParameters | None = None,
) -> CheckResult:
    """FastORs whose (per-event, if scaling is on) content is above the threshold.

    A user threshold (`options.hot_channel_threshold`) replaces the per-histogram default and is used
    as given, in the same units as the compared contents. FastOR id = ROOT bin number - 1, i.e. the
    index of the regular bin. Graded by `checks.grade_flagged` with the spec's parameters (known hot
    FastORs make it Medium; Bad otherwise).
    """
    threshold_source = "default" if options.hot_channel_threshold is None else "user"
    threshold = (
        default_hot_fastor_threshold(histogram.name)
        if options.hot_channel_threshold is None
        else options.hot_channel_threshold
    )
    compared, per_event = scale_by_events_if_requested(histogram, options, n_events)
    typed: dict[str, Any] = {
        "title": HOT_FASTORS_TITLE,
        "threshold": threshold,
        "threshold_source": threshold_source,
        "per_event": per_event,
        "id_label": "FastOR ids",
        "flags_above": True,
    }
    if options.scale_by_events and not per_event:
        # Thresholds are per event here; comparing raw counts would call nearly every FastOR hot.
        return CheckResult(
            check="hot_fastors",
            quality="Null",
            message="no usable event count: cannot compare with a per-event threshold",
            **typed,
        )
    min_events = (parameters or CheckParameters()).get("min_events")
    if per_event and min_events is not None and n_events is not None and n_events < min_events:
        # A few hundred events into a run, a normal FastOR with a handful of hits is "above 0.01".
        return CheckResult(
            check="hot_fastors",
            quality="Null",
            message=f"too few events to judge ({n_events:g} < {min_events:g})",
            **typed,
        )
    hot_channel_ids = tuple(int(i) for i in np.flatnonzero(compared.values() > threshold))
    count = len(hot_channel_ids)
    quality, note = generic.grade_flagged(hot_channel_ids, parameters or CheckParameters())
    return CheckResult(
        check="hot_fastors",
        quality=quality,
        message=f"{counted(count, 'hot FastOR')}{note} above {threshold:g}",
        flagged_ids=hot_channel_ids,
        **typed,
    )


def signal_outlier_check(histogram: Histogram, n_sigma: float) -> CheckResult:
    """Bins further than n_sigma standard deviations from the mean over all bins, with the mean and
    standard deviation recomputed without them (the original's unused `hasSignalOutlier`)."""
    values = histogram.values()
    mean = float(values.mean()) if values.size else 0.0
    std = float(values.std()) if values.size else 0.0
    outliers = np.abs(values - mean) > n_sigma * std
    remaining = values[~outliers]
    count = int(outliers.sum())
    return CheckResult(
        check="signal_outliers",
        # A warning, not a verdict: the rule is a proof of concept.
        quality="Medium" if count else "Good",
        message=f"outlier signal in {counted(count, 'bin')}",
        details={
            "n_sigma": n_sigma,
            "mean": mean,
            "std": std,
            "mean_without_outliers": float(remaining.mean()) if remaining.size else float("nan"),
            "std_without_outliers": float(remaining.std()) if remaining.size else float("nan"),
            # ROOT bin numbers (1 = first regular bin), one tuple per outlier bin.
            "outlier_bins": [tuple(index) for index in (np.argwhere(outliers) + 1).tolist()],
        },
    )


def emcal_dcal_stacks(names: Iterable[str]) -> list[Stack]:
    """One stack per EMCal patch-amplitude spectrum whose DCal partner (same name, EMCal -> DCal) exists.

    The original looked the partner up by its selector and extended the skip list with a string's
    characters, so no stack ever formed.
    """
    ordered_names = list(dict.fromkeys(names))
    available = set(ordered_names)
    stacks: list[Stack] = []
    for name in ordered_names:
        for emcal_token, dcal_token in STACK_PARTNER_TOKENS:
            if emcal_token not in name:
                continue
            partner = name.replace(emcal_token, dcal_token)
            if partner in available:
                # "EMCal max patch amplitude (EMCGAL Online)" -> "EMCal and DCal max patch ...".
                shared = (emc_explicit_name(name) or cleaned_name(name)).replace("EMCal", "", 1).strip()
                stacks.append(
                    Stack(
                        name=name,
                        title=f"EMCal and DCal {shared}",
                        members=(name, partner),
                        labels=("EMCal", "DCal"),
                        styles=(EMCAL_STYLE, DCAL_STYLE),
                    )
                )
            break
    return stacks


@dataclass(frozen=True)
class EMCPlugin(DetectorPlugin):
    """EMC hooks; the logic lives in the module functions above so it can be tested on its own."""

    def explicit_name(self, name: str) -> str | None:
        return emc_explicit_name(name)

    def draw_hints(self, histogram: Histogram) -> DrawHints:
        return emc_draw_hints(histogram)

    def scales_by_events(self, name: str) -> bool:
        return is_scaled_by_events(name)

    def order_grid(self, names: Sequence[str]) -> list[str]:
        return sort_supermodules_in_physical_order(names)

    def stacks(self, names: Iterable[str]) -> list[Stack]:
        return emcal_dcal_stacks(names)

    def events_histogram_name(self, names: Iterable[str]) -> str | None:
        # Exactly this one: a loose "events" match could pick an unrelated histogram.
        return EVENTS_HISTOGRAM if EVENTS_HISTOGRAM in set(names) else None


# ---- declared checks --------------------------------------------------------------------------

HOT_FASTORS_TITLE = "Hot FastORs"
# The known bad-channel map: channels experts already know about. A check that flags only these is
# Medium (reported, not news); any other channel makes it Bad. These are the demo detector's (the
# emulator's built-in hot FastORs and noisy cells); a deployment declares its own detector's.
KNOWN_HOT_FASTORS: tuple[int, ...] = (187, 1342, 2921, 3802)
KNOWN_NOISY_CELL_BINS: tuple[int, ...] = (1536, 9280, 14784)  # first cell id of each 64-cell bin
# FastOR ids that are no FastOR: the PHOS hole in the DCal (columns 16-31, rows 64-99 of the 48 x 104
# map, where the TRU grid has no TRUs) and the ids past the map in the 5000-bin per-id histograms.
N_FASTOR_COLS, N_FASTOR_ROWS, N_FASTOR_ID_BINS = 48, 104, 5000
NOT_FASTOR_IDS: tuple[int, ...] = generic.ids_in_boxes([(16, 16, 64, 36)], N_FASTOR_COLS) + tuple(
    range(N_FASTOR_COLS * N_FASTOR_ROWS, N_FASTOR_ID_BINS)
)
FASTOR_SUMMARY_TH1 = r"^EMCTRQA_histFastORL[01](Amp|LargeAmp)?$"
FASTOR_HITS_TH1 = r"^EMCTRQA_histFastORL[01]$"
SUPERMODULE_HITS = r"^EMCTRQA_histFastORL[01]_SM\d+$"
CELL_AMPLITUDE_MAPS = r"^hIDvsAmp(HG|LG)$"
REFERENCE_COMPARED = r"^(hCluster(Cells|EneEMCAL|InvariantMass|M02|M20)|EMCTRQA_histFastORL[01])$"


def _hot_fastors(histogram: Histogram, parameters: CheckParameters) -> CheckResult:
    return hot_fastor_check(histogram, parameters.options, parameters.n_events, parameters)


def _signal_outliers(histogram: Histogram, parameters: CheckParameters) -> CheckResult | None:
    n_sigma = float(parameters.options.get(OUTLIER_OPTION.name, OUTLIER_OPTION.default))
    if n_sigma <= 0 or supermodule_number(histogram.name) is None:
        return None  # switched off (the default), or not a per-supermodule histogram
    return signal_outlier_check(histogram, n_sigma)


CHECK_SPECS: tuple[CheckSpec, ...] = (
    CheckSpec(
        "hot_fastors",
        HOT_FASTORS_TITLE,
        _hot_fastors,
        FASTOR_SUMMARY_TH1,
        dimensions=(1,),
        parameters={"known_ids": KNOWN_HOT_FASTORS, "min_events": 1000.0},
        # The large-amplitude default (1e-7 per event) flags any FastOR with one large hit: the
        # original's proof of concept, so a warning only.
        overrides=(("LargeAmp", {"quality": "Medium"}),),
        on_page=True,
        tracks_channels=True,
    ),
    CheckSpec(
        "signal_outliers", "Signal outliers", _signal_outliers, r"_SM\d+$", dimensions=(1, 2), on_page=True
    ),
    CheckSpec(
        "hot_cells",
        "Noisy cells",
        generic.hot_channels_along_y,
        CELL_AMPLITUDE_MAPS,
        dimensions=(2,),
        # A 64-cell bin holding a cell that fires in 20 % of events is ~4-5 times the median bin.
        parameters={
            "factor": 3.0,
            "min_median": 20.0,
            "id_label": "first cell id of each 64-cell bin",
            "known_ids": KNOWN_NOISY_CELL_BINS,
        },
        tracks_channels=True,
    ),
    CheckSpec(
        "dead_fastors",
        "Dead FastORs",
        generic.dead_channels,
        FASTOR_HITS_TH1,
        dimensions=(1,),
        parameters={
            "min_median": 20.0,
            "medium_up_to": 10,
            "ignore_ids": NOT_FASTOR_IDS,
            "id_label": "FastOR ids",
        },
    ),
    CheckSpec(
        "empty",
        "Empty histogram",
        generic.empty_histogram,
        # A per-supermodule map of hits above 400 ADC stays empty for a whole pp run.
        r"^(?!.*LargeAmp_SM)",
        parameters={"min_events": 1000.0},
    ),
    CheckSpec(
        "silent_supermodule",
        "Supermodule silent in the last minute",
        generic.empty_histogram,
        SUPERMODULE_HITS,
        dimensions=(2,),
        content="interval",
        parameters={"min_events": 500.0},
    ),
    generic.event_rate_check(r"^EMCTRQA_histEvents$", pp_min_rate_hz=30.0),
    *generic.reference_checks(
        REFERENCE_COMPARED,
        overrides=(
            # Hot FastORs come and go between runs: only a gross change is worth a verdict.
            (FASTOR_HITS_TH1, {"min_p_value": 1e-6, "medium_below": 1e-4}),
            # 700 bins, most with a handful of pairs: chi2's approximation is rough there.
            ("InvariantMass", {"min_p_value": 1e-4, "medium_below": 1e-3}),
        ),
    ),
)

PLUGIN = EMCPlugin(
    subsystem=SUBSYSTEM,
    groups=GROUPS,
    option_specs=(OUTLIER_OPTION,),
    own_names=OWN_NAMES,
    check_specs=CHECK_SPECS,
    trends=TRENDS,
)
