"""Unit tests of the dashboard's pure functions: figures, selector rules and the status panel.

No browser: these check the numbers that end up in the Plotly figure and the rules that decide what
the controls show after a refresh.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from dashboard.figures import (
    TH3_NOTE,
    histogram_figure,
    log10_positive,
    message_figure,
    root_text_to_html,
)
from dashboard.layout import (
    choose_histogram,
    grid_entry,
    grid_group_of,
    histogram_entries,
    options_equal,
)
from dashboard.status_panel import (
    format_age,
    run_state_line,
)
from pipeline.processing.runs import RunInfo, RunSummary, summarize_runs

NOW = 1_750_000_000.0


# ---- figures ---------------------------------------------------------------------------------


@pytest.fixture
def th1(make_histogram):
    return make_histogram(
        "EMCTRQA_histEvents",
        [[0.0, 1.0, 2.5, 4.0, 8.0]],  # variable bin widths on purpose
        values=[3.0, 0.0, 7.0, 1.0],
        variances=[3.0, 0.0, 9.0, 4.0],
        class_name="TH1F",
        title="Number of events",
        axis_titles=("trigger class", "events"),
    )


@pytest.fixture
def th2(make_histogram):
    rng = np.random.default_rng(1)
    values = rng.poisson(2.0, size=(48, 104)).astype(float)
    values[0, :] = 0.0  # a dead column must show up as empty in log z
    return make_histogram(
        "EMCTRQA_histAmpEdgePosEMCGAHOnline",
        [np.arange(49.0), np.arange(105.0)],
        values=values,
        class_name="TH2F",
        axis_titles=("column", "row"),
    )


def test_th1_is_a_step_line_through_the_edges(th1):
    fig = histogram_figure(th1)
    step, error = fig.data
    np.testing.assert_array_equal(step.x, [0.0, 1.0, 2.5, 4.0, 8.0])
    np.testing.assert_array_equal(step.y, [3.0, 0.0, 7.0, 1.0, 1.0])
    assert step.line.shape == "hv"
    np.testing.assert_array_equal(error.x, [0.5, 1.75, 3.25, 6.0])


def test_th1_error_bars_are_sqrt_of_variances(th1):
    error = histogram_figure(th1).data[1]
    np.testing.assert_array_equal(error.y, th1.values())
    np.testing.assert_allclose(error.error_y.array, [np.sqrt(3.0), 0.0, 3.0, 2.0])
    assert error.error_y.visible is True


def test_th1_titles_and_log_y(th1):
    fig = histogram_figure(th1, log_y=True)
    assert fig.layout.title.text == "Number of events"
    assert "EMCTRQA_histEvents" in fig.layout.title.subtitle.text
    assert fig.layout.xaxis.title.text == "trigger class"
    assert fig.layout.yaxis.title.text == "events"
    assert fig.layout.yaxis.type == "log"
    assert histogram_figure(th1).layout.yaxis.type in (None, "linear", "-")


def test_th2_heatmap_z_is_values_transposed(th2):
    fig = histogram_figure(th2)
    (heatmap,) = fig.data
    assert heatmap.type == "heatmap"
    z = np.asarray(heatmap.z)
    assert z.shape == (104, 48)  # Plotly: rows are y, columns are x
    np.testing.assert_array_equal(z, th2.values().T)
    np.testing.assert_array_equal(heatmap.x, np.arange(49.0))
    np.testing.assert_array_equal(heatmap.y, np.arange(105.0))
    assert fig.layout.xaxis.title.text == "column"
    assert fig.layout.yaxis.title.text == "row"
    assert fig.layout.title.text == "AmpEdgePosEMCGAHOnline"  # no title: its cleaned name


def test_th2_log_z_maps_zeros_to_nan_and_keeps_real_values_for_hover(th2):
    (heatmap,) = histogram_figure(th2, log_z=True).data
    z = np.asarray(heatmap.z, dtype=float)
    values_t = th2.values().T
    assert np.all(np.isnan(z[values_t == 0]))
    assert np.isnan(z[:, 0]).all()  # the dead column
    np.testing.assert_allclose(z[values_t > 0], np.log10(values_t[values_t > 0]))
    np.testing.assert_array_equal(np.asarray(heatmap.customdata), values_t)
    assert heatmap.colorbar.ticktext[0] == "1"


def test_log10_positive_handles_zero_and_negative():
    np.testing.assert_allclose(log10_positive(np.array([0.0, -2.0, 1.0, 1000.0])), [np.nan, np.nan, 0.0, 3.0])


def test_th3_is_drawn_as_xy_projection_with_a_note(make_histogram):
    rng = np.random.default_rng(2)
    inner = rng.integers(0, 5, size=(3, 4, 5)).astype(float)
    flow = np.zeros((5, 6, 7))
    flow[1:-1, 1:-1, 1:-1] = inner
    flow[1:-1, 1:-1, 0] = 100.0  # z underflow: summed in, as ROOT's Project3D("xy") does
    h = make_histogram("cube", [np.arange(4.0), np.arange(5.0), np.arange(6.0)], inner, values_flow=flow)
    fig = histogram_figure(h)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), (inner.sum(axis=2) + 100.0).T)
    # Said in the subtitle, where it covers nothing (an annotation there hid the subtitle).
    assert TH3_NOTE in fig.layout.title.subtitle.text
    assert not fig.layout.annotations


def test_a_figure_is_titled_with_the_display_name(make_histogram):
    plain = make_histogram("TPCQA/fHistClusterCharge", [[0, 1]], [1.0])
    titled = make_histogram("x", [[0, 1]], [1.0], title="Cluster charge")
    assert histogram_figure(plain).layout.title.text == "ClusterCharge"
    assert histogram_figure(titled).layout.title.text == "Cluster charge"
    assert histogram_figure(plain, title="Custom").layout.title.text == "Custom"


@pytest.mark.parametrize(
    ("root_text", "plotly_text"),
    [
        ("p_{T} (GeV/#it{c})", "p<sub>T</sub> (GeV/<i>c</i>)"),
        ("#Delta#eta vs #phi", "Δη vs φ"),
        ("10^{x_{1}}", "10<sup>x<sub>1</sub></sup>"),
        ("EMCTRQA_histEvents", "EMCTRQA_histEvents"),  # plain underscores stay
        ("a<b & #unknown", "a&lt;b &amp; #unknown"),
        ("#it x", " x"),
    ],
)
def test_root_latex_becomes_plotly_text(root_text, plotly_text):
    assert root_text_to_html(root_text) == plotly_text


def test_axis_titles_are_converted_from_root_latex(make_histogram):
    h = make_histogram("h", [[0, 1]], [1.0], axis_titles=("p_{T} (GeV/#it{c})", "#eta"))
    fig = histogram_figure(h)
    assert fig.layout.xaxis.title.text == "p<sub>T</sub> (GeV/<i>c</i>)"
    assert fig.layout.yaxis.title.text == "η"


def test_message_figure_says_the_message():
    fig = message_figure("No runs yet")
    assert [a.text for a in fig.layout.annotations] == ["No runs yet"]
    assert not fig.data


# ---- selector rules --------------------------------------------------------------------------


def test_choose_histogram_keeps_valid_choices():
    names = ["a", "b", "c"]
    assert choose_histogram(names, "b") == "b"
    assert choose_histogram(names, "gone", remembered="c") == "c"
    assert choose_histogram(names, None) == "a"
    assert choose_histogram([], "a") is None


def test_summarize_runs_merges_subsystems_newest_first():
    def utc(seconds):
        return datetime.fromtimestamp(seconds, UTC)

    def info(run, subsystem, mode, beam, first_s, last_s, n, ongoing):
        return RunInfo(run, subsystem, subsystem, mode, beam, utc(first_s), utc(last_s), n, ongoing)

    runs = [
        info(300001, "EMC", "B", "pp", NOW - 100, NOW - 10, 4, True),
        info(300001, "TPC", "B", "pp", NOW - 90, NOW - 20, 3, False),
        info(300000, "EMC", "A", "", NOW - 5000, NOW - 4000, 9, False),
    ]
    newest, older = summarize_runs(runs)
    # One entry per run, in the service's order, described by its first subsystem with its own data
    # (the processing gives every subsystem of a run the same span and the same "ongoing").
    assert newest == RunSummary(
        300001, utc(NOW - 100), utc(NOW - 10), "B", "pp", True, ("EMC", "TPC"), ("EMC", "TPC")
    )
    assert newest.length_minutes == 1.5
    assert older == RunSummary(300000, utc(NOW - 5000), utc(NOW - 4000), "A", "", False, ("EMC",), ("EMC",))
    assert summarize_runs([]) == []


def test_options_equal_compares_labels_and_values():
    options = [{"label": "Run 1 (U)", "value": 1}]
    assert options_equal(options, [{"label": "Run 1 (U)", "value": 1}])
    assert not options_equal(options, [{"label": "Run 1 (U) ● live", "value": 1}])
    assert not options_equal(options, None)


# ---- status panel ----------------------------------------------------------------------------


def test_run_state_line_follows_the_processings_verdict():
    # A snapshot 10 minutes old, but a live receiver still on the run: ongoing, as the run list says.
    ongoing = repr(run_state_line(300001, NOW - 600, True, NOW))
    assert "'ongoing'" in ongoing and "last snapshot 10 min ago" in ongoing
    finished = repr(run_state_line(300001, NOW - 600, False, NOW))
    assert "'not ongoing'" in finished and "(10 min ago)" in finished
    assert "No run selected." in repr(run_state_line(None, None, False, NOW))


def test_format_age():
    assert [format_age(s) for s in (3.2, 600, 9000, 200000, None)] == [
        "3 s",
        "10 min",
        "2.5 h",
        "2.3 d",
        "—",
    ]


def test_a_grid_group_offers_all_its_histograms_as_one_grid_first():
    names = ["EMCTRQA_histFEEvsTRU_SM0", "EMCTRQA_histFEEvsTRU_SM1"]
    entries = histogram_entries(names, [], lambda name: name.removeprefix("EMCTRQA_hist"), "FEE vs TRU")
    assert entries[0] == {"label": "All 2 as a grid", "value": grid_entry("FEE vs TRU")}
    assert [e["label"] for e in entries[1:]] == ["FEEvsTRU_SM0", "FEEvsTRU_SM1"]
    assert grid_group_of(entries[0]["value"]) == "FEE vs TRU"
    assert grid_group_of(names[0]) is None
    # One histogram is no grid; a group that is not a grid group offers none.
    assert len(histogram_entries(names[:1], [], str, "FEE vs TRU")) == 1
    assert len(histogram_entries(names, [], str, None)) == 2
