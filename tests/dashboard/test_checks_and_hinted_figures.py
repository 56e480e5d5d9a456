"""What the shift crew reads under and in a plot, without a browser: the check panel (verdict, threshold,
flagged FastOR ids) and figures drawn with the EMC plug-in's hints (per-event values, threshold line,
hot channels ringed, TRU grid, the ADC-to-GeV axis over EMCal/DCal stacks)."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.checks import (
    INLINE_IDS,
    check_results_panel,
    compact_ranges,
    threshold_line,
    threshold_placeholder,
)
from dashboard.components.histogram_view import content_patch, trace_digests
from dashboard.figures import (
    MAX_MARKED_CHANNELS,
    MAX_SEPARATE_POINTS,
    grid_figure,
    group_log_flags,
    log_colorbar_ticks,
    processed_figure,
    stack_figure,
    styled,
)
from pipeline.detectors.base import CheckResult, process_histogram
from pipeline.detectors.emc import EMC_L1_ADC_TO_GEV, PLUGIN, TRU_GRID
from pipeline.detectors.hlt import PLUGIN as HLT_PLUGIN
from pipeline.histogram import Histogram
from pipeline.processing.options import ProcessingOptions
from tests.dashboard.component_text import component_texts

N_EVENTS = 1000.0
HOT_IDS = (7, 42, 1500)


def _th1(name: str, values: np.ndarray, edges: np.ndarray | None = None) -> Histogram:
    edges = np.arange(values.size + 1, dtype=float) if edges is None else edges
    flow = np.concatenate([[0.0], values, [0.0]])
    return Histogram(name, "TH1D", name, (edges,), flow, flow.copy(), float(values.sum()), ("id", "counts"))


def _fastor_l0() -> Histogram:
    counts = np.full(3000, 2.0)  # 0.002 per event everywhere
    counts[list(HOT_IDS)] = [50.0, 500.0, 5000.0]  # 0.05, 0.5 and 5 per event
    return _th1("EMCTRQA_histFastORL0", counts)


def test_hot_fastor_panel_says_verdict_threshold_and_ids():
    processed = process_histogram(PLUGIN, _fastor_l0(), ProcessingOptions(), N_EVENTS)
    (check,) = processed.checks
    texts = component_texts(check_results_panel(processed.checks))
    assert check.quality in texts
    assert "Hot FastORs" in texts
    assert check.message in texts
    assert check.message == "3 hot FastORs above 0.01"
    assert "threshold 0.01 entries/event · per-histogram default" in texts
    assert [int(t) for t in texts if t.isdigit()] == list(HOT_IDS)
    assert threshold_placeholder(processed.checks) == "default 0.01 per event"

    user = process_histogram(PLUGIN, _fastor_l0(), ProcessingOptions(hot_channel_threshold=0.2), N_EVENTS)
    assert threshold_line(user.checks[0]) == "threshold 0.2 entries/event · your value"
    assert threshold_placeholder(user.checks) is None  # the box shows the user's own value
    assert [int(t) for t in component_texts(check_results_panel(user.checks)) if t.isdigit()] == [42, 1500]


def test_a_long_id_list_is_folded_and_no_checks_is_said():
    # The id label and the title come from the typed result: the dashboard knows nothing of FastORs.
    many = CheckResult(
        "hot_fastors",
        "Bad",
        "100 hot FastORs",
        title="Hot FastORs",
        flagged_ids=tuple(range(100)),
        id_label="FastOR ids",
        flags_above=True,
    )
    texts = component_texts(check_results_panel([many]))
    assert "100 FastOR ids — show all" in texts
    assert "0–99" in texts  # one folded text block, not 100 elements
    assert not [t for t in texts if t.isdigit()]
    assert INLINE_IDS < 100
    assert compact_ranges([9, 1, 2, 3, 7, 10]) == "1–3, 7, 9–10"
    assert component_texts(check_results_panel([])) == ["No checks for this histogram."]


def test_fastor_figure_is_per_event_with_threshold_line_and_hot_channels_ringed():
    processed = process_histogram(PLUGIN, _fastor_l0(), ProcessingOptions(), N_EVENTS)
    figure = processed_figure(processed)
    traces = {trace.name: trace for trace in figure.data}
    np.testing.assert_allclose(traces["content"].y, _fastor_l0().values() / N_EVENTS)
    assert figure.layout.yaxis.title.text == "entries / events"
    threshold = traces["threshold 0.01"]
    assert list(threshold.y) == [0.01, 0.01]
    ringed = traces["above threshold (3)"]
    np.testing.assert_allclose(ringed.x, [h + 0.5 for h in HOT_IDS])  # bin centres of the hot ids
    np.testing.assert_allclose(ringed.y, [0.05, 0.5, 5.0])


def test_unscaled_counts_are_judged_and_drawn_raw_and_a_flood_of_flags_is_not_ringed():
    processed = process_histogram(PLUGIN, _fastor_l0(), ProcessingOptions(scale_by_events=False), N_EVENTS)
    figure = processed_figure(processed)
    traces = {trace.name: trace for trace in figure.data}
    assert processed.scaled_by_events is False
    np.testing.assert_allclose(traces["content"].y, _fastor_l0().values())
    assert figure.layout.yaxis.title.text == "entries"
    # The per-event default compared with raw counts flags every FastOR: the line is where the check
    # compared, but 3000 rings would hide the plot: the highest are ringed and the legend says so.
    assert processed.checks[0].flagged_ids == tuple(range(3000))
    assert list(traces["threshold 0.01"].y) == [0.01, 0.01]
    ringed = traces[f"above threshold (3,000; {MAX_MARKED_CHANNELS} highest ringed)"]
    assert len(ringed.x) == MAX_MARKED_CHANNELS
    highest = np.sort(_fastor_l0().values())[::-1][:MAX_MARKED_CHANNELS]
    np.testing.assert_allclose(np.sort(ringed.y)[::-1], highest)


def test_edge_position_map_has_the_tru_grid_and_log_z():
    values = np.random.default_rng(3).poisson(40.0, size=(50, 106)).astype(float)
    amp = Histogram(
        "EMCTRQA_histAmpEdgePosEMCGAHOnline", "TH2F", "amp", (np.arange(49.0), np.arange(105.0)),
        values, values.copy(), float(values.sum()), ("col", "row"),
    )  # fmt: skip
    processed = process_histogram(PLUGIN, amp, ProcessingOptions(), N_EVENTS)
    figure = processed_figure(processed)
    assert len(figure.layout.shapes) == len(TRU_GRID) == 22
    assert figure.data[0].type == "heatmap"
    assert figure.data[0].colorbar.ticktext is not None  # log z: decade labels
    np.testing.assert_allclose(
        10.0 ** np.asarray(figure.data[0].z, dtype=float), values[1:-1, 1:-1].T / N_EVENTS
    )


def test_emcal_dcal_stack_has_both_members_a_legend_and_the_energy_axis():
    edges = np.linspace(0.0, 1000.0, 101)
    names = ("EMCTRQA_histEMCalMaxPatchAmpEMCGAHOnline", "EMCTRQA_histDCalMaxPatchAmpEMCGAHOnline")
    histograms = [_th1(name, np.linspace(100.0, 1.0, 100) * (k + 1), edges) for k, name in enumerate(names)]
    (stack,) = PLUGIN.stacks(names)
    members = [process_histogram(PLUGIN, h, ProcessingOptions(), N_EVENTS) for h in histograms]
    figure = stack_figure(stack, members)
    shown = [trace for trace in figure.data if trace.showlegend is not False]
    assert [trace.name for trace in shown] == ["EMCal", "DCal"]
    np.testing.assert_allclose(shown[1].y, histograms[1].values() / N_EVENTS)
    assert figure.layout.yaxis.type == "log"
    top = figure.layout.xaxis2
    assert (top.side, top.overlaying) == ("top", "x")
    # Each top tick sits where the ADC value converts to its GeV label.
    for position, label in zip(top.tickvals, top.ticktext, strict=True):
        assert position * EMC_L1_ADC_TO_GEV == pytest.approx(float(label))
    # Plotly only draws an axis a trace uses: one legend-less trace anchors it.
    assert any(trace.xaxis == "x2" for trace in figure.data)


def _fee_vs_tru(supermodule: int, scale: float) -> Histogram:
    values = np.zeros((252, 22))
    values[1:-1, 1:-1] = scale * np.outer(np.linspace(1.0, 2.0, 250), np.ones(20))
    return Histogram(
        f"EMCTRQA_histFEEvsTRU_SM{supermodule}", "TH2F", "FEE vs TRU",
        (np.linspace(0.0, 250.0, 251), np.linspace(0.0, 20.0, 21)),
        values, values.copy(), float(values.sum()), ("FEE", "TRU"),
    )  # fmt: skip


def test_a_grid_group_is_drawn_in_physical_order_on_one_shared_colour_scale():
    names = [f"EMCTRQA_histFEEvsTRU_SM{n}" for n in (0, 1, 18, 19, 10)]
    ordered = PLUGIN.order_grid(names)
    assert ordered[:2] == ["EMCTRQA_histFEEvsTRU_SM18", "EMCTRQA_histFEEvsTRU_SM19"]
    scale = {name: float(k + 1) for k, name in enumerate(ordered)}
    members = [
        process_histogram(
            PLUGIN, _fee_vs_tru(int(name.rsplit("SM", 1)[1]), scale[name]), ProcessingOptions(), 10
        )
        for name in ordered
    ]
    figure = grid_figure("FEE vs TRU", members, log_z=True, context="time slice 1.0–4.0 min")
    heatmaps = [trace for trace in figure.data if trace.type == "heatmap"]
    assert [trace.name for trace in heatmaps] == ordered
    assert {trace.coloraxis for trace in heatmaps} == {"coloraxis"}  # one scale for every panel
    assert [a.text for a in figure.layout.annotations] == ["SM 18", "SM 19", "SM 10", "SM 0", "SM 1"]
    # Per event (10 events), in log10: the panel drawn third holds 3x the first one's contents.
    np.testing.assert_allclose(
        10.0 ** np.asarray(heatmaps[2].z), 3.0 * np.outer(np.ones(20), np.linspace(1, 2, 250)) / 10
    )
    assert figure.layout.xaxis.range == (0, 250) and figure.layout.yaxis.range == (0, 20)  # FEE ranges
    assert figure.layout.title.text == "FEE vs TRU"
    assert figure.layout.title.subtitle.text == "5 histograms · time slice 1.0–4.0 min"
    # Same bins in every panel: x labels under each column's bottom panel (SM 18 has SM 1 below it;
    # SM 19 has nothing below it in the short last row), y labels left of the first column only.
    x_labels = [figure.layout[f"xaxis{i if i > 1 else ''}"].showticklabels is not False for i in range(1, 6)]
    y_labels = [figure.layout[f"yaxis{i if i > 1 else ''}"].showticklabels is not False for i in range(1, 6)]
    assert x_labels == [False, True, True, True, True]
    assert y_labels == [True, False, False, False, True]


@pytest.mark.parametrize(
    ("low", "high", "labels"),
    [
        (0.0005, 0.004, ["0.0005", "0.001", "0.002"]),  # less than a decade: 1-2-5 steps
        (1.0, 5e6, ["1", "10", "100", "1000", "10000", "1e5", "1e6"]),  # decades only
        (2e-7, 3e-6, ["2e-7", "5e-7", "1e-6", "2e-6"]),
        (3.0, 3.0, ["3"]),  # a flat map: its one value
    ],
)
def test_log_colour_bar_labels_real_contents(low, high, labels):
    ticks = log_colorbar_ticks(np.log10(np.array([low, high])))
    assert ticks["ticktext"] == labels
    np.testing.assert_allclose(10.0 ** np.asarray(ticks["tickvals"]), [float(x) for x in labels], rtol=1e-9)


def test_a_dense_histogram_is_drawn_as_one_path_per_trace_with_its_errors_as_a_band():
    # 3,000 FastORs with the plug-in's marker style: a marker and an error bar per bin would be 6,000
    # SVG elements; a line and a band around it are one path each.
    processed = process_histogram(PLUGIN, _fastor_l0(), ProcessingOptions(), N_EVENTS)
    assert _fastor_l0().values().size > MAX_SEPARATE_POINTS
    traces = {trace.name: trace for trace in processed_figure(processed).data}
    content = traces["content"]
    assert content.mode == "lines" and content.error_y.array is None
    errors = _fastor_l0().errors() / N_EVENTS
    values = _fastor_l0().values() / N_EVENTS
    np.testing.assert_allclose(traces["error band low"].y, values - errors, rtol=1e-6)
    np.testing.assert_allclose(traces["error band"].y, values + errors, rtol=1e-6)
    assert traces["error band"].fill == "tonexty"
    # The hover still names each bin and its error.
    np.testing.assert_allclose(np.asarray(content.customdata)[HOT_IDS[1]], [42, 43, errors[42]], rtol=1e-6)
    # A histogram of a few bins keeps its markers and error bars.
    few = process_histogram(
        PLUGIN, _th1("EMCTRQA_histFastORL0", np.array([1.0, 4.0, 9.0])), ProcessingOptions(), 1
    )
    (small,) = [trace for trace in processed_figure(few).data if trace.name == "content"]
    assert small.mode == "markers"
    np.testing.assert_allclose(small.error_y.array, [1.0, 2.0, 3.0])


def test_a_threshold_change_patches_only_the_traces_it_changes():
    def drawn(threshold: float) -> dict:
        options = ProcessingOptions(hot_channel_threshold=threshold)
        return styled(processed_figure(process_histogram(PLUGIN, _fastor_l0(), options, N_EVENTS)))

    shown, changed = drawn(0.01), drawn(0.2)
    names = [trace["name"] for trace in changed["data"]]
    patch = content_patch(changed, trace_digests(shown)).to_plotly_json()
    data_operations = [op for op in patch["operations"] if op["location"][:1] == ["data"]]
    # Only the threshold line and the ringed channels (index 3 and 4) are sent again, not the bins.
    assert sorted(op["location"][1] for op in data_operations) == [
        names.index("threshold 0.2"),
        names.index("above threshold (2)"),
    ]
    assert all(op["operation"] == "Assign" for op in data_operations)
    # Fewer traces (nothing above the threshold): the rings are deleted, the rest is not sent.
    nothing_flagged = drawn(10.0)
    patch = content_patch(nothing_flagged, trace_digests(changed)).to_plotly_json()
    data_operations = [op for op in patch["operations"] if op["location"][:1] == ["data"]]
    assert [(op["operation"], op["location"][1:]) for op in data_operations] == [
        ("Assign", [names.index("threshold 0.2")]),
        ("Delete", [names.index("above threshold (2)")]),
    ]
    # Without what is on screen, every trace is sent.
    full = content_patch(changed).to_plotly_json()
    assert [op["location"] for op in full["operations"] if op["location"][:1] == ["data"]] == [["data"]]


def _map(name: str, scale: float) -> Histogram:
    values = np.zeros((6, 5))
    values[1:-1, 1:-1] = scale * np.arange(1.0, 13.0).reshape(4, 3)
    return Histogram(
        name, "TH2F", name, (np.linspace(0.0, 4.0, 5), np.linspace(0.0, 3.0, 4)),
        values, values.copy(), float(values.sum()), ("col", "row"),
    )  # fmt: skip


def _members(histograms: list[Histogram]) -> list:
    return [process_histogram(PLUGIN, h, ProcessingOptions(), None) for h in histograms]


def test_a_group_of_1d_histograms_then_maps_draws_its_maps_with_the_maps_hint():
    # EMC's FastOR group: linear 1D histograms first, then maps whose experts want log z.
    members = _members([_fastor_l0(), _map("EMCTRQA_histFastORL0Amp", 10.0)])
    assert (members[0].hints.log_z, members[1].hints.log_z) == (False, True)
    figure = grid_figure("FastOR", members)
    [heatmap] = [trace for trace in figure.data if trace.type == "heatmap"]
    np.testing.assert_allclose(10.0 ** np.asarray(heatmap.z), 10.0 * np.arange(1.0, 13.0).reshape(4, 3).T)
    assert figure.layout.yaxis.type != "log"  # the 1D panel keeps its linear hint
    assert group_log_flags(members) == (False, False, True)
    assert group_log_flags(members, log_z=False)[2] is False  # the person's choice wins


def test_a_group_of_maps_then_1d_histograms_draws_its_1d_panels_with_their_log_y():
    # EMC's trigger-patch groups: log-z maps first, then amplitude spectra whose experts want log y.
    spectrum = _th1("EMCTRQA_histEMCalPatchAmpEMCGALOnline", np.array([5.0, 50.0, 500.0]))
    members = _members([_map("EMCTRQA_histAmpEdgePosEMCGALOffline", 1.0), spectrum])
    assert (members[0].hints.log_y, members[1].hints.log_y) == (False, True)
    figure = grid_figure("Gamma Trigger Low", members)
    assert figure.layout.yaxis2.type == "log"  # the spectrum's panel
    assert figure.layout.yaxis.type != "log"  # a map's y axis is a coordinate
    [heatmap] = [trace for trace in figure.data if trace.type == "heatmap"]
    np.testing.assert_allclose(10.0 ** np.asarray(heatmap.z), np.arange(1.0, 13.0).reshape(4, 3).T)


def test_grid_panel_titles_render_root_markup():
    # The review: HLT's grids titled their panels "track p_{T}" and "row vs #phi", markup and all.
    flat = np.ones(5)
    histograms = [
        Histogram("fHistTPCTrackPt", "TH1D", "track p_{T}", (np.linspace(0, 3, 4),), flat, flat, 3.0),
        Histogram(
            "fHistTPCAallClustersRowPhi", "TH1D", "row vs #phi", (np.linspace(0, 3, 4),), flat, flat, 3.0
        ),
    ]
    members = [process_histogram(HLT_PLUGIN, h, ProcessingOptions(), None) for h in histograms]
    figure = grid_figure("TPC", members)
    assert [annotation.text for annotation in figure.layout.annotations] == [
        "track p<sub>T</sub>",
        "row vs φ",
    ]
