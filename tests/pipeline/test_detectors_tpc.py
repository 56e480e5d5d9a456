"""TPC plug-in: groups, and the TH3 projections checked against direct numpy sums on known TH3s."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.detectors import plugin_for
from pipeline.detectors.base import group_histograms
from pipeline.detectors.tpc import PLUGIN, PROJECTIONS
from pipeline.histogram import Histogram

DCA_EDGES = np.linspace(-3.0, 3.0, 21)
ETA_EDGES = np.linspace(-1.5, 1.5, 31)  # ROOT bins 1-15: η < 0 (C side), 16-30: η > 0 (A side)
PHI_EDGES = np.linspace(0.0, 2 * np.pi, 19)
FOUND_FRACTION_EDGES = np.linspace(0.0, 1.0, 11)
CLUSTERS_EDGES = np.linspace(0.0, 160.0, 161)
PT_EDGES = np.linspace(0.0, 20.0, 41)
AXIS_TITLES = {"dca": "DCA (cm)", "eta": "#eta", "phi": "#phi (rad)", "pt": "p_{T} (GeV/c)"}


def _th3(name: str, edges: tuple[np.ndarray, ...], titles: tuple[str, ...], seed: int) -> Histogram:
    """Distinct random contents in every bin, flow bins included; variances differ from values."""
    rng = np.random.default_rng(seed)
    shape = tuple(len(e) + 1 for e in edges)
    values_flow = rng.integers(0, 50, size=shape).astype(float)
    return Histogram(
        name=name,
        class_name="TH3D",
        title=name,
        edges=edges,
        values_flow=values_flow,
        variances_flow=values_flow * 1.5 + 1.0,
        axis_titles=titles,
    )


def _sources() -> dict[str, Histogram]:
    sources = {}
    seed = 0
    for charge in ("pos", "neg"):
        for variable in (3, 4):
            name = f"TPCQA/h_tpc_track_{charge}_recvertex_{variable}_5_6"
            titles = (AXIS_TITLES["dca"], AXIS_TITLES["eta"], AXIS_TITLES["phi"])
            sources[name] = _th3(name, (DCA_EDGES, ETA_EDGES, PHI_EDGES), titles, seed := seed + 1)
        name = f"TPCQA/h_tpc_track_{charge}_recvertex_2_5_6"
        titles = ("found/findable", AXIS_TITLES["eta"], AXIS_TITLES["phi"])
        sources[name] = _th3(name, (FOUND_FRACTION_EDGES, ETA_EDGES, PHI_EDGES), titles, seed := seed + 1)
        name = f"TPCQA/h_tpc_track_{charge}_recvertex_0_5_7"
        titles = ("clusters", AXIS_TITLES["eta"], AXIS_TITLES["pt"])
        sources[name] = _th3(name, (CLUSTERS_EDGES, ETA_EDGES, PT_EDGES), titles, seed := seed + 1)
    return sources


@pytest.fixture(scope="module")
def sources() -> dict[str, Histogram]:
    return _sources()


@pytest.fixture(scope="module")
def derived(sources) -> dict[str, Histogram]:
    return PLUGIN.derived_histograms(sources)


def test_plugin_is_registered_with_fifteen_groups() -> None:
    assert plugin_for("TPC") is PLUGIN
    assert len(PLUGIN.groups) == 15
    assert [g.title for g in PLUGIN.groups[-2:]] == ["Other TPC", "Non TPC"]


def test_all_fourteen_projections_are_derived(derived) -> None:
    expected = {
        f"DCA{kind}_vs_Phi_{charge}tracks_{side}Side"
        for kind in ("r", "z")
        for charge in ("pos", "neg")
        for side in ("a", "c")
    }
    expected |= {
        f"{what}_{charge}tracks" for what in ("Eta_vs_Phi", "pT", "Eta") for charge in ("pos", "neg")
    }
    assert set(derived) == expected == {spec.name for spec in PROJECTIONS}


def test_projections_need_their_source_th3(sources, make_histogram) -> None:
    only_pos_dca_r = {
        "TPCQA/h_tpc_track_pos_recvertex_3_5_6": sources["TPCQA/h_tpc_track_pos_recvertex_3_5_6"],
        # Same name but not a TH3: nothing to project.
        "TPCQA/h_tpc_track_neg_recvertex_0_5_7": make_histogram(
            "TPCQA/h_tpc_track_neg_recvertex_0_5_7", [[0, 1]], [1.0]
        ),
    }
    assert set(PLUGIN.derived_histograms(only_pos_dca_r)) == {
        "DCAr_vs_Phi_postracks_aSide",
        "DCAr_vs_Phi_postracks_cSide",
    }
    assert PLUGIN.derived_histograms({}) == {}


@pytest.mark.parametrize(("kind", "variable"), [("r", 3), ("z", 4)])
@pytest.mark.parametrize("charge", ["pos", "neg"])
def test_dca_vs_phi_per_side_sums_the_eta_bins_of_that_side(sources, derived, kind, variable, charge) -> None:
    # DCAr comes from `_3_` and DCAz from `_4_`, as the TPC README documents.
    source = sources[f"TPCQA/h_tpc_track_{charge}_recvertex_{variable}_5_6"]
    for side, eta_bins in (("a", slice(16, 31)), ("c", slice(1, 16))):
        result = derived[f"DCA{kind}_vs_Phi_{charge}tracks_{side}Side"]
        # Project3D("XZ"): φ on the horizontal (x) axis, DCA on the vertical (y) axis.
        assert result.shape == (len(PHI_EDGES) - 1, len(DCA_EDGES) - 1)
        np.testing.assert_array_equal(result.edges[0], PHI_EDGES)
        np.testing.assert_array_equal(result.edges[1], DCA_EDGES)
        np.testing.assert_array_equal(result.values_flow, source.values_flow[:, eta_bins, :].sum(axis=1).T)
        np.testing.assert_array_equal(
            result.variances_flow, source.variances_flow[:, eta_bins, :].sum(axis=1).T
        )
        assert result.axis_titles[:2] == ("#phi (rad)", f"DCA{kind} (cm)")
        sign = "positive" if charge == "pos" else "negative"
        expected_name = f"DCA{kind} vs Phi for {sign} tracks on {side.upper()} side"
        assert PLUGIN.display_name(result.name) == result.title == expected_name


def test_sides_are_chosen_by_eta_value_not_bin_number() -> None:
    eta_edges = np.linspace(-0.5, 1.5, 21)  # 5 bins below 0, 15 above
    source = _th3(
        "TPCQA/h_tpc_track_pos_recvertex_3_5_6", (DCA_EDGES, eta_edges, PHI_EDGES), ("", "", ""), seed=99
    )
    derived = PLUGIN.derived_histograms({source.name: source})
    np.testing.assert_array_equal(
        derived["DCAr_vs_Phi_postracks_cSide"].values_flow, source.values_flow[:, 1:6, :].sum(axis=1).T
    )
    np.testing.assert_array_equal(
        derived["DCAr_vs_Phi_postracks_aSide"].values_flow, source.values_flow[:, 6:21, :].sum(axis=1).T
    )


@pytest.mark.parametrize(("charge", "sign"), [("pos", "positive"), ("neg", "negative")])
def test_eta_vs_phi_per_charge(sources, derived, charge, sign) -> None:
    source = sources[f"TPCQA/h_tpc_track_{charge}_recvertex_2_5_6"]
    result = derived[f"Eta_vs_Phi_{charge}tracks"]
    # Project3D("YZ"): φ horizontal, η vertical, summed over every found/findable bin incl. flow.
    assert result.shape == (len(PHI_EDGES) - 1, len(ETA_EDGES) - 1)
    np.testing.assert_array_equal(result.values_flow, source.values_flow.sum(axis=0).T)
    np.testing.assert_array_equal(result.variances_flow, source.variances_flow.sum(axis=0).T)
    assert result.axis_titles[:2] == ("#phi (rad)", "#eta")
    # The original called both "negative" (stale loop variable).
    assert PLUGIN.display_name(result.name) == f"Eta vs Phi of {sign} tracks"


@pytest.mark.parametrize(("charge", "sign"), [("pos", "positive"), ("neg", "negative")])
def test_pt_and_eta_of_tracks_with_more_than_70_clusters(sources, derived, charge, sign) -> None:
    source = sources[f"TPCQA/h_tpc_track_{charge}_recvertex_0_5_7"]
    pt = derived[f"pT_{charge}tracks"]
    # ProjectionZ over x (clusters) bins 71-160 and y (η) bins 1-30.
    assert pt.shape == (len(PT_EDGES) - 1,)
    np.testing.assert_array_equal(pt.edges[0], PT_EDGES)
    np.testing.assert_array_equal(pt.values_flow, source.values_flow[71:161, 1:31, :].sum(axis=(0, 1)))
    np.testing.assert_array_equal(pt.variances_flow, source.variances_flow[71:161, 1:31, :].sum(axis=(0, 1)))
    assert pt.title == f"pT of {sign} tracks (ncl>70)"
    eta = derived[f"Eta_{charge}tracks"]
    # ProjectionY over x bins 71-160 and z (pT) bins 1-25.
    assert eta.shape == (len(ETA_EDGES) - 1,)
    np.testing.assert_array_equal(eta.values_flow, source.values_flow[71:161, :, 1:26].sum(axis=(0, 2)))
    assert eta.title == f"Eta of {sign} tracks (ncl>70)"
    assert pt.class_name == eta.class_name == "TH1D"


def test_pt_spectra_are_drawn_with_log_y_and_titles(derived) -> None:
    hints = PLUGIN.draw_hints(derived["pT_postracks"])
    assert hints.log_y and hints.show_title and hints.y_title == "dN/dp_{T}"
    dca_hints = PLUGIN.draw_hints(derived["DCAz_vs_Phi_negtracks_cSide"])
    assert dca_hints.colz and dca_hints.show_title and not dca_hints.log_y
    assert dca_hints.pretty_name == "DCAz vs Phi for negative tracks on C side"


def test_groups_of_derived_and_received_histograms(sources, derived) -> None:
    names = [*derived, *sources, "TPCQA/h_tpc_event_recvertex_2", "fHistZNA_VZEROTrigChargeA"]
    grouped = {group.title: members for group, members in group_histograms(PLUGIN, names)}
    assert grouped["DCAr vs Phi"] == [n for n in derived if n.startswith("DCAr_vs_Phi")]
    assert grouped["DCAz vs Phi"] == [n for n in derived if n.startswith("DCAz_vs_Phi")]
    assert grouped["TPC Cluster Eta vs Phi"] == ["Eta_vs_Phi_postracks", "Eta_vs_Phi_negtracks"]
    assert grouped["TPC Cluster Eta"] == ["Eta_postracks", "Eta_negtracks"]
    assert grouped["Pt spectra"] == ["pT_postracks", "pT_negtracks"]
    assert grouped["TPC Event RecVertex"] == ["TPCQA/h_tpc_event_recvertex_2"]
    assert set(grouped["Positive RecVertex"]) == {n for n in sources if "_pos_" in n}
    assert set(grouped["Negative RecVertex"]) == {n for n in sources if "_neg_" in n}
    assert grouped["Non TPC"] == ["fHistZNA_VZEROTrigChargeA"]
    from_hlt = {group.title for group, _ in group_histograms(PLUGIN, names, has_own_receiver=False)}
    assert "Non TPC" not in from_hlt


def test_only_the_tpc_qa_folder_is_claimed_from_hlt_files() -> None:
    assert PLUGIN.is_own_histogram("TPCQA/h_tpc_track_pos_recvertex_0_5_7")
    for hlt_name in ("fHistTPCdEdxMaxIROC", "fHistTPCAallClustersRowPhi", "fHistTPCTrackPt", "EMCTRQA_x"):
        assert not PLUGIN.is_own_histogram(hlt_name)


def test_one_projection_is_made_from_its_own_source_alone(sources, derived) -> None:
    names = PLUGIN.derived_names(sources)
    assert names == [spec.name for spec in PROJECTIONS] == list(derived)
    spec = PROJECTIONS[0]
    asked: list[str] = []

    class Recording(dict):
        def __getitem__(self, name):
            asked.append(name)
            return super().__getitem__(name)

    one = PLUGIN.derive(spec.name, Recording(sources))
    assert asked == [spec.source]
    np.testing.assert_array_equal(one.values_flow, derived[spec.name].values_flow)
    with pytest.raises(KeyError):
        PLUGIN.derive("not_a_projection", sources)
    flat = Histogram(spec.source, "TH1D", "", (np.array([0.0, 1.0]),), np.zeros(3), np.zeros(3))
    with pytest.raises(KeyError):
        PLUGIN.derive(spec.name, {spec.source: flat})
