"""Synthetic EMCal/DCal trigger QA (the `EMCTRQA_` objects of the EMC merger) plus cluster QA.

Geometry follows the TRU grid OVERWATCH draws: a 48-column x 104-row FastOR map, EMCal on rows 0-63
(ten full supermodules and two 1/3 ones), DCal on rows 64-103 (six 2/3 supermodules around the PHOS
hole at columns 16-31, rows 64-99, and two 1/3 ones). FastOR id = row * 48 + col, so the per-id
histograms have bin number - 1 == id, as OVERWATCH's hot-channel finder assumes.

A few FastORs (`HOT_FASTOR_IDS`) are hot at the trigger-electronics level: they fire in a large
fraction of events with large amplitudes in the TRU/STU data but are quiet in the FEE (cell) data, so
they stand out per event in `EMCTRQA_histFastOR*`, sit off the diagonal of FEE-vs-TRU, and create
excess trigger patches in the Online/Recalc edge-position maps but not in the Offline ones.

Besides the trigger QA, the EMC merger carried the HLT's cluster QA (`hCluster...`) and digit monitor
(`hIDvs...`: cell id vs amplitude and time, per gain). Cell ids run over the 17664 EMCal + DCal cells;
a few `NOISY_CELL_IDS` fire often at low high-gain amplitude and at random times.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.emulator.detectors import (
    Axis,
    Detector,
    HistogramSpec,
    Increment,
    bin_indices,
    counts_increment,
    fill_samples,
    geometric_sums,
    spec,
    truncated_pareto,
)

N_COLS = 48
N_ROWS = 104
N_FASTOR_IDS = 5000
FIRST_DCAL_ROW = 64
N_SUPERMODULES = 20
# Trigger-electronics hot spots: far above the 1e-2 hits/event default threshold of OVERWATCH.
HOT_FASTOR_IDS: tuple[int, ...] = (187, 1342, 2921, 3802)
DEAD_FASTOR_IDS: tuple[int, ...] = (455, 2210, 2211, 4130)
TRIGGER_CLASSES: tuple[str, ...] = ("EMCGAH", "EMCGAL", "EMCJEH", "EMCJEL", "EMCL0")
PATCH_KINDS: tuple[str, ...] = ("Offline", "Online", "Recalc")
# The patch-amplitude spectra are published for the L1 classes only.
PATCH_SPECTRUM_CLASSES: tuple[str, ...] = ("EMCGAH", "EMCGAL", "EMCJEH", "EMCJEL")
PATCH_SPECTRUM_KIND = "Online"
MEDIAN_KINDS: tuple[str, ...] = ("Offline", "Recalc")
CLUSTER_HISTOGRAMS: tuple[str, ...] = (
    "hClusterCells",
    "hClusterEneCells",
    "hClusterEneEMCAL",
    "hClusterEneVsTime",
    "hClusterEtaVsPhi",
    "hClusterInvariantMass",
    "hClusterM02",
    "hClusterM20",
    "hClusterNumVsV0",
)
# The background (jet-patch rho) trigger: each calorimeter's median against either one's max patch.
BACKGROUND_TRIGGER = "EMCREBKG"
CALORIMETERS: tuple[str, ...] = ("EMCal", "DCal")
# Cells: 10 full (1152) + 2 third (384) EMCal supermodules, 6 two-third (768) + 2 third DCal ones.
N_CELLS = 17664
# Cell-id bins of 64 cells (a divisor of every supermodule's cell count): the HLT's 20000 single-cell
# bins times 200 amplitude or 1000 time bins would make each map tens of megabytes.
CELLS_PER_ID_BIN = 64
NOISY_CELL_IDS: tuple[int, ...] = (1547, 9310, 14790)
CELL_GAINS: tuple[str, ...] = ("LG", "HG")
# High gain saturates near 16 GeV (1023 ADC at ~16 MeV/ADC); low gain is 16 times coarser, so its
# zero suppression sits higher.
HIGH_GAIN_SATURATION_GEV = 15.5
LOW_GAIN_THRESHOLD_GEV = 0.25
# Raw cell time of collision hits in the digit stream (ns), before any time calibration.
CELL_TIME_PEAK_NS = 610.0
PREFIX = "EMCTRQA_hist"
_GEOMETRY_SEED = 20180801  # fixed: every EMCDetector is the same physical detector


def fastor_id(col: np.ndarray | int, row: np.ndarray | int) -> np.ndarray | int:
    return row * N_COLS + col


def fastor_position(fastor: int) -> tuple[int, int]:
    """(col, row) of a FastOR id."""
    return fastor % N_COLS, fastor // N_COLS


def _supermodule_boxes() -> list[tuple[int, int, int, int, int]]:
    """(supermodule, first col, n cols, first row, n rows) in the FastOR map."""
    boxes = []
    for layer in range(5):  # full EMCal supermodules 0-9
        boxes += [(2 * layer, 0, 24, 12 * layer, 12), (2 * layer + 1, 24, 24, 12 * layer, 12)]
    boxes += [(10, 0, 24, 60, 4), (11, 24, 24, 60, 4)]
    for layer in range(3):  # 2/3 DCal supermodules either side of the PHOS hole
        row = FIRST_DCAL_ROW + 12 * layer
        boxes += [(12 + 2 * layer, 0, 16, row, 12), (13 + 2 * layer, 32, 16, row, 12)]
    boxes += [(18, 0, 24, 100, 4), (19, 24, 24, 100, 4)]
    return boxes


SUPERMODULE_BOXES = _supermodule_boxes()


def _supermodule_gather() -> np.ndarray:
    """Per supermodule, the flat [col, row] FastOR index of each bin of its 24 x 12 map with flow bins.

    Bins with no FastOR (flow bins, the smaller supermodules' unused columns and rows) point one past
    the map, where `_per_supermodule` puts a zero.
    """
    gather = np.full((N_SUPERMODULES, 26, 14), N_COLS * N_ROWS)
    for sm, col0, ncols, row0, nrows in SUPERMODULE_BOXES:
        cols = np.arange(col0, col0 + ncols)[:, None]
        rows = np.arange(row0, row0 + nrows)[None, :]
        gather[sm, 1 : 1 + ncols, 1 : 1 + nrows] = cols * N_ROWS + rows
    return gather


_SUPERMODULE_GATHER = _supermodule_gather()


def supermodule_map() -> np.ndarray:
    """Supermodule number per [col, row]; -1 where there is no FastOR (PHOS hole)."""
    sm_of = np.full((N_COLS, N_ROWS), -1, dtype=np.int64)
    for sm, col0, ncols, row0, nrows in SUPERMODULE_BOXES:
        sm_of[col0 : col0 + ncols, row0 : row0 + nrows] = sm
    return sm_of


def _ids_mask(ids: Sequence[int]) -> np.ndarray:
    mask = np.zeros((N_COLS, N_ROWS), dtype=bool)
    for fastor in ids:
        mask[fastor_position(fastor)] = True
    return mask


class _PatchClass:
    """Trigger patch geometry and rates for one trigger class (L1 thresholds in L1 ADC counts)."""

    def __init__(
        self,
        size: int,
        edge_step: int,
        threshold_adc: float,
        patches_per_event: float,
        spectrum_index: float,
        hot_patches_per_event: float,
    ) -> None:
        self.size = size
        self.edge_step = edge_step
        self.threshold_adc = threshold_adc
        self.patches_per_event = patches_per_event
        self.spectrum_index = spectrum_index
        self.hot_patches_per_event = hot_patches_per_event


_PATCH_CLASSES = {
    # 2x2 gamma / L0 patches slide by one FastOR; 16x16 jet patches by one 4x4 subregion.
    "EMCL0": _PatchClass(2, 1, 32, 1.0, 3.0, 0.05),
    "EMCGAL": _PatchClass(2, 1, 51, 0.6, 3.2, 0.03),
    "EMCGAH": _PatchClass(2, 1, 115, 0.2, 3.4, 0.01),
    "EMCJEL": _PatchClass(16, 4, 203, 0.3, 3.6, 0.0),
    "EMCJEH": _PatchClass(16, 4, 254, 0.15, 3.8, 0.0),
}


def _allowed_edges(active: np.ndarray, size: int, step: int) -> np.ndarray:
    """[col, row] mask of lower-left patch edges whose whole patch is active and in one calorimeter."""
    allowed = np.zeros_like(active)
    for first_row, last_row in ((0, FIRST_DCAL_ROW), (FIRST_DCAL_ROW, N_ROWS)):
        region = active[:, first_row:last_row].astype(np.int64)
        # Integral image: number of active FastORs in every size x size window in O(1) each.
        integral = np.zeros((region.shape[0] + 1, region.shape[1] + 1), dtype=np.int64)
        integral[1:, 1:] = region.cumsum(0).cumsum(1)
        windows = (
            integral[size:, size:]
            - integral[:-size, size:]
            - integral[size:, :-size]
            + integral[:-size, :-size]
        )
        full = windows == size * size
        cols = np.arange(full.shape[0])[:, None]
        rows = np.arange(full.shape[1])[None, :]
        full &= (cols % step == 0) & (rows % step == 0)
        allowed[: full.shape[0], first_row : first_row + full.shape[1]] = full
    return allowed


class EMCDetector(Detector):
    """EMCal trigger QA as the HLT EMC merger published it in 2018."""

    subsystem = "EMC"
    base_event_rate_hz = 100.0
    rate_oscillation_s = 311.0

    def __init__(self, step_s: float = 2.0, beam_type: str = "pp", hlt_mode: str = "B") -> None:
        geometry_rng = np.random.default_rng(_GEOMETRY_SEED)
        self.sm_of = supermodule_map()
        self.hot = _ids_mask(HOT_FASTOR_IDS)
        dead = _ids_mask(DEAD_FASTOR_IDS)
        self.present = self.sm_of >= 0
        self.active = self.present & ~dead
        super().__init__(step_s=step_s, beam_type=beam_type, hlt_mode=hlt_mode)
        cols = np.arange(N_COLS)[:, None]
        eta_profile = 1.0 + 0.1 * np.cos(np.pi * (cols - 23.5) / N_COLS)
        gains = geometry_rng.lognormal(0.0, 0.25, size=(N_COLS, N_ROWS))
        occupancy = 2e-3 * self.multiplicity_scale * eta_profile * gains
        occupancy = np.where(self.active, occupancy, 0.0)
        # Hits per event: FastOR with ADC > 0 at L0 and at L1.
        self.l0_hits_per_event = np.where(self.hot, 0.2, occupancy)
        self.l1_hits_per_event = np.where(self.hot, 0.17, 0.85 * occupancy)
        # Above 400 ADC (~30 GeV at L1) is rare for a good FastOR in pp; noisy ones get there often.
        self.large_amp_fraction = np.where(self.hot, 0.05, 1e-5)
        self._patch_edges = {
            name: _allowed_edges(self.active, c.size, c.edge_step) for name, c in _PATCH_CLASSES.items()
        }
        self._patch_pdf = {
            (name, hot): self._patch_position_pdf(name, hot)
            for name in _PATCH_CLASSES
            for hot in (False, True)
        }

    # --- declaration -------------------------------------------------------------------------

    def _declare(self) -> Sequence[HistogramSpec]:
        col_axis = Axis.regular(N_COLS, 0, N_COLS, "Col")
        row_axis = Axis.regular(N_ROWS, 0, N_ROWS, "Row")
        fastor_axis = Axis.integer_centred(N_FASTOR_IDS, "FastOR abs. ID")
        specs = [spec(f"{PREFIX}Events", "TH1F", "Number of events", Axis.regular(1, 0, 1, "events"))]
        for level in ("L0", "L1"):
            specs += [
                spec(f"{PREFIX}FastOR{level}", "TH1F", f"FastOR {level} (hits with ADC > 0)", fastor_axis),
                spec(
                    f"{PREFIX}FastOR{level}LargeAmp",
                    "TH1F",
                    f"FastOR {level} large amplitude (hits above 400 ADC)",
                    fastor_axis,
                ),
                spec(
                    f"{PREFIX}FastOR{level}Amp",
                    "TH2F",
                    f"FastOR {level} amplitude (hits weighted with ADC value)",
                    col_axis,
                    row_axis,
                ),
            ]
        specs.append(
            spec(
                f"{PREFIX}FastORL0Time", "TH2F", "FastOR L0 time (weighted with time bin)", col_axis, row_axis
            )
        )
        for trigger in TRIGGER_CLASSES:
            for kind in PATCH_KINDS:
                specs += [
                    spec(
                        f"{PREFIX}AmpEdgePos{trigger}{kind}",
                        "TH2F",
                        f"Integrated amplitude in patch edge position ({trigger} {kind})",
                        col_axis,
                        row_axis,
                    ),
                    spec(
                        f"{PREFIX}MaxEdgePos{trigger}{kind}",
                        "TH2F",
                        f"Edge position of the max patch ({trigger} {kind})",
                        col_axis,
                        row_axis,
                    ),
                ]
        amplitude_axis = Axis.regular(200, 0, 2000, "Patch amplitude (ADC)")
        for calorimeter in ("EMCal", "DCal"):
            for trigger in PATCH_SPECTRUM_CLASSES:
                for quantity, title in (
                    ("PatchAmp", "patch amplitude"),
                    ("MaxPatchAmp", "max patch amplitude"),
                ):
                    specs.append(
                        spec(
                            f"{PREFIX}{calorimeter}{quantity}{trigger}{PATCH_SPECTRUM_KIND}",
                            "TH1F",
                            f"{calorimeter} {title} ({trigger} {PATCH_SPECTRUM_KIND})",
                            amplitude_axis,
                        )
                    )
        median_high = 30.0 * self.multiplicity_scale
        for kind in MEDIAN_KINDS:
            specs.append(
                spec(
                    f"{PREFIX}EMCalMedianVsDCalMedian{kind}",
                    "TH2F",
                    f"EMCal median vs DCal median ({kind})",
                    Axis.regular(60, 0, median_high, "EMCal median (ADC)"),
                    Axis.regular(60, 0, median_high, "DCal median (ADC)"),
                )
            )
        for kind in MEDIAN_KINDS:
            for median_calorimeter in CALORIMETERS:
                for max_calorimeter in CALORIMETERS:
                    specs.append(
                        spec(
                            f"{PREFIX}{median_calorimeter}MedianVs{max_calorimeter}Max"
                            f"{BACKGROUND_TRIGGER}{kind}",
                            "TH2F",
                            f"{median_calorimeter} background median vs {max_calorimeter} max "
                            f"background patch ({kind})",
                            Axis.regular(80, 0, 10 * median_high, f"{max_calorimeter} max (ADC)"),
                            Axis.regular(30, 0, median_high, f"{median_calorimeter} median (ADC)"),
                        )
                    )
        fee_axis = Axis.regular(50, 0, 250, "FEE amplitude (ADC)")
        for sm in range(N_SUPERMODULES):
            specs += [
                spec(
                    f"{PREFIX}FEEvsTRU_SM{sm}",
                    "TH2F",
                    f"FEE vs TRU, SM {sm}",
                    fee_axis,
                    Axis.regular(40, 0, 20, "TRU amplitude (ADC)"),
                ),
                spec(
                    f"{PREFIX}FEEvsSTU_SM{sm}",
                    "TH2F",
                    f"FEE vs STU, SM {sm}",
                    fee_axis,
                    Axis.regular(40, 0, 20, "STU amplitude (ADC)"),
                ),
            ]
            for level in ("L0", "L1"):
                for kind, title in (
                    ("", "hits"),
                    ("Amp", "amplitude (hits weighted with ADC value)"),
                    ("LargeAmp", "large amplitude (hits above 400 ADC)"),
                ):
                    specs.append(
                        spec(
                            f"{PREFIX}FastOR{level}{kind}_SM{sm}",
                            "TH2F",
                            f"FastOR {level} {title}, SM {sm}",
                            Axis.regular(24, 0, 24, "Col in SM"),
                            Axis.regular(12, 0, 12, "Row in SM"),
                        )
                    )
        energy_axis = Axis.regular(100, 0, 50, "Cluster Energy (GeV)")
        specs += [
            spec(
                "hClusterCells",
                "TH1F",
                "Number of cells per cluster",
                Axis.regular(50, 0, 50, "Number of cells/cluster"),
            ),
            spec(
                "hClusterEneCells",
                "TH2F",
                "Cluster energy vs number of cells",
                energy_axis,
                Axis.regular(50, 0, 50, "Number of cells/cluster"),
            ),
            spec(
                "hClusterEneEMCAL",
                "TH1F",
                "Cluster energy",
                Axis.regular(200, 0, 100, "Cluster Energy (GeV)"),
            ),
            spec(
                "hClusterEneVsTime",
                "TH2F",
                "Cluster energy vs time",
                energy_axis,
                Axis.regular(100, -50, 50, "Cluster time (ns)"),
            ),
            spec(
                "hClusterEtaVsPhi",
                "TH2F",
                "Cluster #eta vs #phi",
                Axis.regular(70, -0.7, 0.7, "#eta"),
                Axis.regular(115, 1.2, 5.8, "#phi (rad)"),
            ),
            spec(
                "hClusterInvariantMass",
                "TH1F",
                "Cluster pair invariant mass",
                Axis.regular(700, 0, 0.7, "M_{#gamma#gamma} (GeV/c^{2})"),
            ),
            spec("hClusterM02", "TH1F", "Cluster shape M02", Axis.regular(100, 0, 2, "M02")),
            spec("hClusterM20", "TH1F", "Cluster shape M20", Axis.regular(100, 0, 2, "M20")),
            spec(
                "hClusterNumVsV0",
                "TH2F",
                "Number of clusters vs V0 amplitude",
                Axis.regular(100, 0, 100 * self.multiplicity_scale, "Number of clusters"),
                Axis.regular(100, 0, 500 * self.multiplicity_scale, "V0 amplitude"),
            ),
        ]
        cell_axis = Axis.regular(N_CELLS // CELLS_PER_ID_BIN, 0, N_CELLS, "Cell ID")
        for gain in CELL_GAINS:
            specs += [
                spec(
                    f"hIDvsAmp{gain}",
                    "TH2F",
                    f"Amplitude vs tower ID for {gain}",
                    Axis.regular(100, 0, 20, "Cell amplitude (GeV)"),
                    cell_axis,
                ),
                spec(
                    f"hIDvsTime{gain}",
                    "TH2F",
                    f"Time vs. tower ID for {gain}",
                    Axis.regular(50, 0, 1000, "Cell time (ns)"),
                    cell_axis,
                ),
            ]
        return specs

    # --- filling -----------------------------------------------------------------------------

    def fill(
        self, step_index: int, rng: np.random.Generator, rate_factor: float = 1.0
    ) -> dict[str, Increment]:
        n_events = self.events_in_step(step_index, rng, rate_factor)
        events = np.zeros(self.specs[f"{PREFIX}Events"].flow_shape)
        events[1] = n_events
        increments = {f"{PREFIX}Events": counts_increment(events)}
        increments.update(self._fill_fastors(n_events, rng))
        increments.update(self._fill_patches(n_events, rng))
        medians = self._draw_medians(n_events, rng)
        increments.update(self._fill_medians(medians))
        increments.update(self._fill_clusters(n_events, rng))
        # Families added later draw last, so the earlier ones keep their random streams.
        increments.update(self._fill_background(medians, rng))
        increments.update(self._fill_cells(n_events, rng))
        return increments

    def _fill_fastors(self, n_events: int, rng: np.random.Generator) -> dict[str, Increment]:
        increments: dict[str, Increment] = {}
        for level, hits_per_event in (("L0", self.l0_hits_per_event), ("L1", self.l1_hits_per_event)):
            hits = rng.poisson(n_events * hits_per_event)
            large = rng.binomial(hits, self.large_amp_fraction)
            increments[f"{PREFIX}FastOR{level}"] = counts_increment(self._per_id(hits))
            increments[f"{PREFIX}FastOR{level}LargeAmp"] = counts_increment(self._per_id(large))
            mean_amplitude = np.where(self.hot, 80.0, 30.0)
            amplitude_sum, amplitude_squares = self._amplitudes(rng, hits, mean_amplitude)
            increments[f"{PREFIX}FastOR{level}Amp"] = Increment(
                _pad(amplitude_sum), _pad(amplitude_squares), float(hits.sum())
            )
            increments.update(
                self._fill_supermodule_maps(level, hits, amplitude_sum, amplitude_squares, large)
            )
            if level == "L0":
                # Hot channels are also mistimed: their L0 time sits late in the 16-sample window.
                time_sum = rng.binomial(16 * hits, np.where(self.hot, 0.7, 0.5)).astype(np.float64)
                time_squares = np.rint(time_sum * np.where(self.hot, 11.9, 8.5))
                increments[f"{PREFIX}FastORL0Time"] = Increment(
                    _pad(time_sum), _pad(time_squares), float(hits.sum())
                )
            increments.update(self._fill_fee_correlation(level, hits, rng))
        return increments

    def _amplitudes(
        self, rng: np.random.Generator, hits: np.ndarray, mean_amplitude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-FastOR sums of integer ADC amplitudes (hot FastORs have larger ones)."""
        amplitude_sum = np.zeros(hits.shape)
        amplitude_squares = np.zeros(hits.shape)
        for mean in np.unique(mean_amplitude):
            selected = mean_amplitude == mean
            sums, squares = geometric_sums(rng, np.where(selected, hits, 0), 0.0, float(mean))
            amplitude_sum += sums
            amplitude_squares += squares
        return amplitude_sum, amplitude_squares

    @staticmethod
    def _per_id(per_fastor: np.ndarray) -> np.ndarray:
        """[col, row] map to a per-id TH1 array with flow bins (id = row * 48 + col)."""
        values = np.zeros(N_FASTOR_IDS + 2)
        values[1 : 1 + N_COLS * N_ROWS] = per_fastor.T.ravel()
        return values

    def _fill_supermodule_maps(
        self,
        level: str,
        hits: np.ndarray,
        amplitude_sum: np.ndarray,
        amplitude_squares: np.ndarray,
        large: np.ndarray,
    ) -> dict[str, Increment]:
        """The FastOR maps cut per supermodule: hits, ADC-weighted hits and hits above 400 ADC."""
        local_hits = _per_supermodule(hits)
        local_sums = _per_supermodule(amplitude_sum)
        local_squares = _per_supermodule(amplitude_squares)
        local_large = _per_supermodule(large)
        hits_per_supermodule = local_hits.sum(axis=(1, 2))
        increments = {}
        for sm in range(N_SUPERMODULES):
            increments[f"{PREFIX}FastOR{level}_SM{sm}"] = counts_increment(local_hits[sm])
            increments[f"{PREFIX}FastOR{level}Amp_SM{sm}"] = Increment(
                local_sums[sm], local_squares[sm], float(hits_per_supermodule[sm])
            )
            increments[f"{PREFIX}FastOR{level}LargeAmp_SM{sm}"] = counts_increment(local_large[sm])
        return increments

    def _fill_fee_correlation(
        self, level: str, hits: np.ndarray, rng: np.random.Generator
    ) -> dict[str, Increment]:
        """FEE (cell) vs TRU/STU amplitude per hit, per supermodule.

        Good channels sit on the diagonal (TRU ~ 0.08 x FEE); hot FastORs show trigger amplitude
        with an empty FEE readout.
        """
        trigger = "TRU" if level == "L0" else "STU"
        flat_hits = hits.ravel()
        hit_cells = np.repeat(np.arange(flat_hits.size), flat_hits)
        supermodule = self.sm_of.ravel()[hit_cells]
        hot = self.hot.ravel()[hit_cells]
        fee = rng.geometric(1 / 30.0, size=hit_cells.size).astype(np.float64)
        trigger_amplitude = 0.08 * fee + rng.normal(0.0, 0.6 if level == "L0" else 0.4, hit_cells.size)
        fee = np.where(hot, np.abs(rng.normal(0.0, 2.0, hit_cells.size)), fee)
        trigger_amplitude = np.where(hot, 0.08 * rng.geometric(1 / 80.0, hit_cells.size), trigger_amplitude)
        first = self.specs[f"{PREFIX}FEEvs{trigger}_SM0"]
        per_supermodule = _fill_grouped(first, supermodule, N_SUPERMODULES, fee, trigger_amplitude)
        return {
            f"{PREFIX}FEEvs{trigger}_SM{sm}": counts_increment(per_supermodule[sm])
            for sm in range(N_SUPERMODULES)
        }

    def _patch_position_pdf(self, trigger: str, with_hot: bool) -> tuple[np.ndarray, float]:
        """Flat index probabilities of patch edges, and the patch rate per event they add up to."""
        patch_class = _PATCH_CLASSES[trigger]
        allowed = self._patch_edges[trigger].astype(np.float64)
        weights = allowed * patch_class.patches_per_event * self.multiplicity_scale / allowed.sum()
        if with_hot and patch_class.hot_patches_per_event > 0:
            # Every allowed 2x2 patch containing a hot FastOR gets a share of its extra patches.
            for fastor in HOT_FASTOR_IDS:
                col, row = fastor_position(fastor)
                window = allowed[max(col - 1, 0) : col + 1, max(row - 1, 0) : row + 1]
                if window.sum() > 0:
                    share = patch_class.hot_patches_per_event / window.sum()
                    weights[max(col - 1, 0) : col + 1, max(row - 1, 0) : row + 1] += window * share
        rate = float(weights.sum())
        return (weights / rate).ravel(), rate

    def _draw_patches(
        self, trigger: str, with_hot: bool, n_events: int, rate_factor: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(event index, flat edge position, amplitude) of patches above threshold in one step."""
        pdf, rate = self._patch_pdf[(trigger, with_hot)]
        n_patches = int(rng.poisson(n_events * rate * rate_factor)) if n_events else 0
        positions = rng.choice(pdf.size, size=n_patches, p=pdf)
        patch_class = _PATCH_CLASSES[trigger]
        amplitudes = np.floor(
            truncated_pareto(rng, n_patches, patch_class.threshold_adc, patch_class.spectrum_index)
        )
        event = rng.integers(0, max(n_events, 1), size=n_patches)
        return event, positions, amplitudes

    def _fill_patches(self, n_events: int, rng: np.random.Generator) -> dict[str, Increment]:
        increments: dict[str, Increment] = {}
        for trigger in TRIGGER_CLASSES:
            online = self._draw_patches(trigger, True, n_events, 1.0, rng)
            # Recalc re-derives Online patches from FastOR data: the same patches, a few lost.
            kept = rng.random(online[0].size) > 0.02
            recalc = tuple(part[kept] for part in online)
            # Offline patches come from cells: fewer, slightly lower, and blind to TRU hot spots.
            offline_event, offline_position, offline_amplitude = self._draw_patches(
                trigger, False, n_events, 0.85, rng
            )
            offline = (offline_event, offline_position, np.floor(0.95 * offline_amplitude))
            for kind, (event, position, amplitude) in zip(
                PATCH_KINDS, (offline, online, recalc), strict=True
            ):
                col, row = np.unravel_index(position, (N_COLS, N_ROWS))
                increments[f"{PREFIX}AmpEdgePos{trigger}{kind}"] = fill_samples(
                    self.specs[f"{PREFIX}AmpEdgePos{trigger}{kind}"], col, row, weights=amplitude
                )
                is_max = _first_per_group(event, amplitude)
                increments[f"{PREFIX}MaxEdgePos{trigger}{kind}"] = fill_samples(
                    self.specs[f"{PREFIX}MaxEdgePos{trigger}{kind}"], col[is_max], row[is_max]
                )
                if kind == PATCH_SPECTRUM_KIND and trigger in PATCH_SPECTRUM_CLASSES:
                    increments.update(self._fill_patch_spectra(trigger, event, row, amplitude))
        return increments

    def _fill_patch_spectra(
        self, trigger: str, event: np.ndarray, row: np.ndarray, amplitude: np.ndarray
    ) -> dict[str, Increment]:
        increments = {}
        for calorimeter, in_calorimeter in (("EMCal", row < FIRST_DCAL_ROW), ("DCal", row >= FIRST_DCAL_ROW)):
            name = f"{PREFIX}{calorimeter}PatchAmp{trigger}{PATCH_SPECTRUM_KIND}"
            increments[name] = fill_samples(self.specs[name], amplitude[in_calorimeter])
            is_max = _first_per_group(event[in_calorimeter], amplitude[in_calorimeter])
            name = f"{PREFIX}{calorimeter}MaxPatchAmp{trigger}{PATCH_SPECTRUM_KIND}"
            increments[name] = fill_samples(self.specs[name], amplitude[in_calorimeter][is_max])
        return increments

    def _draw_medians(
        self, n_events: int, rng: np.random.Generator
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-event background medians (jet-patch rho), (EMCal, DCal) per kind: one event, both seen."""
        scale = self.multiplicity_scale
        emcal = rng.gamma(2.0, 2.5 * scale, n_events)
        dcal = np.clip(0.9 * emcal + rng.normal(0.0, 0.8 * scale, n_events), 0.0, None)
        emcal_offline = 1.05 * emcal + rng.normal(0.0, 0.3 * scale, n_events)
        dcal_offline = 1.05 * dcal + rng.normal(0.0, 0.3 * scale, n_events)
        return {"Recalc": (emcal, dcal), "Offline": (emcal_offline, dcal_offline)}

    def _fill_medians(self, medians: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Increment]:
        return {
            f"{PREFIX}EMCalMedianVsDCalMedian{kind}": fill_samples(
                self.specs[f"{PREFIX}EMCalMedianVsDCalMedian{kind}"], *medians[kind]
            )
            for kind in MEDIAN_KINDS
        }

    def _fill_background(
        self, medians: dict[str, tuple[np.ndarray, np.ndarray]], rng: np.random.Generator
    ) -> dict[str, Increment]:
        """Each calorimeter's background median against the largest background patch of either one.

        The max patch of a calorimeter is its median plus an upward fluctuation (a jet, or a dense
        region) with a falling power-law tail; Offline maxima follow the Recalc ones from the cells.
        """
        scale = self.multiplicity_scale
        emcal, dcal = medians["Recalc"]
        n_events = emcal.size
        emcal_max = 2.0 * emcal + truncated_pareto(rng, n_events, 8.0 * scale, 2.2)
        dcal_max = 2.0 * dcal + truncated_pareto(rng, n_events, 6.0 * scale, 2.2)
        emcal_max_offline = 1.05 * emcal_max + rng.normal(0.0, 1.0 * scale, n_events)
        dcal_max_offline = 1.05 * dcal_max + rng.normal(0.0, 1.0 * scale, n_events)
        maxima = {"Recalc": (emcal_max, dcal_max), "Offline": (emcal_max_offline, dcal_max_offline)}
        increments = {}
        for kind in MEDIAN_KINDS:
            for median_index, median_calorimeter in enumerate(CALORIMETERS):
                for max_index, max_calorimeter in enumerate(CALORIMETERS):
                    name = (
                        f"{PREFIX}{median_calorimeter}MedianVs{max_calorimeter}Max{BACKGROUND_TRIGGER}{kind}"
                    )
                    increments[name] = fill_samples(
                        self.specs[name], maxima[kind][max_index], medians[kind][median_index]
                    )
        return increments

    def _fill_clusters(self, n_events: int, rng: np.random.Generator) -> dict[str, Increment]:
        n_clusters = int(rng.poisson(1.5 * self.multiplicity_scale * n_events))
        in_emcal = rng.random(n_clusters) < 0.65
        eta_emcal = rng.uniform(-0.67, 0.67, n_clusters)
        # DCal covers 0.22 < |eta| < 0.67 (PHOS sits in the middle).
        eta_dcal = rng.choice((-1.0, 1.0), n_clusters) * rng.uniform(0.22, 0.67, n_clusters)
        eta = np.where(in_emcal, eta_emcal, eta_dcal)
        phi = np.where(in_emcal, rng.uniform(1.40, 3.26, n_clusters), rng.uniform(4.54, 5.71, n_clusters))
        energy = truncated_pareto(rng, n_clusters, 0.3, 2.5)
        cells = 1 + rng.poisson(0.8 + 1.6 * np.log1p(energy / 0.5))
        is_photon = rng.random(n_clusters) < 0.65
        m02 = np.where(is_photon, rng.normal(0.25, 0.04, n_clusters), 0.1 + rng.gamma(2.0, 0.2, n_clusters))
        m02 = np.where(cells == 1, 0.0, m02)
        in_time = rng.random(n_clusters) < 0.97
        time_ns = np.where(in_time, rng.normal(0.0, 4.0, n_clusters), rng.uniform(-50, 50, n_clusters))
        clusters_per_event = np.bincount(rng.integers(0, max(n_events, 1), n_clusters), minlength=n_events)
        n_pairs = int((clusters_per_event * (clusters_per_event - 1) // 2).sum())
        kind = rng.random(n_pairs)
        mass = np.where(
            kind < 0.08,
            rng.normal(0.135, 0.011, n_pairs),
            np.where(kind < 0.095, rng.normal(0.548, 0.03, n_pairs), rng.gamma(2.2, 0.09, n_pairs)),
        )
        # M20 (minor axis of the shower ellipse) is at most M02.
        m20 = m02 * rng.beta(5.0, 2.5, n_clusters)
        # V0 amplitude follows the event activity, known here through the event's cluster count: the
        # posterior of a Gamma(k, 1/k) activity after Poisson(rate * activity) clusters.
        activity_shape = 1.5
        cluster_rate = 1.5 * self.multiplicity_scale
        activity = rng.gamma(activity_shape + clusters_per_event, 1.0 / (activity_shape + cluster_rate))
        v0_amplitude = 50.0 * self.multiplicity_scale * activity
        specs = self.specs
        return {
            "hClusterCells": fill_samples(specs["hClusterCells"], cells),
            "hClusterEneCells": fill_samples(specs["hClusterEneCells"], energy, cells),
            "hClusterEneEMCAL": fill_samples(specs["hClusterEneEMCAL"], energy),
            "hClusterEneVsTime": fill_samples(specs["hClusterEneVsTime"], energy, time_ns),
            "hClusterEtaVsPhi": fill_samples(specs["hClusterEtaVsPhi"], eta, phi),
            "hClusterInvariantMass": fill_samples(specs["hClusterInvariantMass"], mass),
            "hClusterM02": fill_samples(specs["hClusterM02"], m02),
            "hClusterM20": fill_samples(specs["hClusterM20"], m20),
            "hClusterNumVsV0": fill_samples(specs["hClusterNumVsV0"], clusters_per_event, v0_amplitude),
        }

    def _fill_cells(self, n_events: int, rng: np.random.Generator) -> dict[str, Increment]:
        """Digits (cells above zero suppression) per gain: cell id vs amplitude and vs time.

        Most digits are low-energy (noise and soft particles) with a power-law tail from showers;
        collision hits sit in a narrow time peak that widens at low amplitude. Noisy cells add
        low-amplitude high-gain digits at random times.
        """
        n_digits = int(rng.poisson(15.0 * self.multiplicity_scale * n_events))
        # Digits are independent of each other, so drawing their cells in order changes nothing but
        # makes binning them several times faster. At 64 cells per bin, per-cell gains would not show.
        cell = np.sort(rng.integers(0, N_CELLS, n_digits))
        soft = rng.random(n_digits) < 0.6
        energy = np.where(
            soft, 0.05 + rng.exponential(0.15, n_digits), truncated_pareto(rng, n_digits, 0.1, 2.0)
        )
        resolution_ns = np.sqrt(2.0**2 + (1.5 / energy) ** 2)
        out_of_time = rng.random(n_digits) < 0.03
        time_ns = np.where(
            out_of_time,
            rng.uniform(0.0, 1000.0, n_digits),
            CELL_TIME_PEAK_NS + resolution_ns * rng.standard_normal(n_digits),
        )
        noise_hits = rng.poisson(0.2 * n_events, len(NOISY_CELL_IDS))
        noisy_cell = np.repeat(np.array(NOISY_CELL_IDS), noise_hits)
        noisy_energy = 0.05 + rng.exponential(0.1, noisy_cell.size)
        noisy_time = rng.uniform(0.0, 1000.0, noisy_cell.size)
        # Low gain: 16 times coarser, so noisier in amplitude and time, and only above its threshold.
        low_gain_energy = energy * rng.normal(1.0, 0.03, n_digits)
        low_gain_time = time_ns + 1.5 * resolution_ns * rng.standard_normal(n_digits)
        high = energy < HIGH_GAIN_SATURATION_GEV
        low = low_gain_energy > LOW_GAIN_THRESHOLD_GEV
        gains = {
            "HG": (
                np.concatenate((cell[high], noisy_cell)),
                np.concatenate((energy[high], noisy_energy)),
                np.concatenate((time_ns[high], noisy_time)),
            ),
            "LG": (cell[low], low_gain_energy[low], low_gain_time[low]),
        }
        increments = {}
        for gain, (gain_cell, gain_energy, gain_time) in gains.items():
            increments[f"hIDvsAmp{gain}"] = fill_samples(
                self.specs[f"hIDvsAmp{gain}"], gain_energy, gain_cell
            )
            increments[f"hIDvsTime{gain}"] = fill_samples(
                self.specs[f"hIDvsTime{gain}"], gain_time, gain_cell
            )
        return increments


def _pad(per_fastor: np.ndarray) -> np.ndarray:
    padded = np.zeros((N_COLS + 2, N_ROWS + 2))
    padded[1:-1, 1:-1] = per_fastor
    return padded


def _per_supermodule(per_fastor: np.ndarray) -> np.ndarray:
    """A [col, row] FastOR map cut into per-supermodule maps with flow bins: (supermodule, 26, 14)."""
    return np.append(per_fastor.ravel(), 0.0)[_SUPERMODULE_GATHER]


def _first_per_group(group: np.ndarray, amplitude: np.ndarray) -> np.ndarray:
    """Indices of the largest amplitude in each group (event): the max patch per event."""
    if group.size == 0:
        return np.zeros(0, dtype=np.intp)
    order = np.lexsort((-amplitude, group))
    first = np.ones(order.size, dtype=bool)
    first[1:] = group[order][1:] != group[order][:-1]
    return order[first]


def _fill_grouped(
    template: HistogramSpec, group: np.ndarray, n_groups: int, *coordinates: np.ndarray
) -> np.ndarray:
    """Counts for `n_groups` histograms of the same binning in one bincount: shape (groups, flow...)."""
    shape = (n_groups, *template.flow_shape)
    indices = [group] + [
        bin_indices(axis.edges, c) for axis, c in zip(template.axes, coordinates, strict=True)
    ]
    flat = np.ravel_multi_index(indices, shape) if group.size else np.zeros(0, dtype=np.intp)
    return np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape).astype(np.float64)
