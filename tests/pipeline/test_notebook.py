"""The notebook helper reads the store through the processing, with the API's parameters."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.histogram import Histogram
from pipeline.notebook import open_store
from pipeline.processing.options import OptionsError
from tests.api_store import EVENTS, FASTOR, ODD_NAME, RUN, fastor_flow, odd_flow, write_run


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("notebook") / "data"
    write_run(data_dir)
    return data_dir


def test_runs_names_and_histograms_of_a_run_and_a_slice(data_dir):
    with open_store(data_dir) as store:
        runs = store.runs()
        assert runs[["run", "subsystem", "n_snapshots", "length_minutes"]].values.tolist() == [
            [RUN, "EMC", 4, 3.0]
        ]
        assert sorted(store.names(RUN, "EMC")) == sorted([EVENTS, FASTOR, ODD_NAME])
        whole = store.histogram(RUN, "EMC", ODD_NAME)
        assert isinstance(whole, Histogram)
        np.testing.assert_array_equal(whole.values_flow, odd_flow(3)[0])
        np.testing.assert_array_equal(whole.variances_flow, odd_flow(3)[1])
        sliced = store.histograms(RUN, "EMC", [FASTOR, EVENTS], min=1, max=3, scale=False)
        np.testing.assert_array_equal(sliced[FASTOR].values_flow, fastor_flow(3) - fastor_flow(1))
        assert sliced[EVENTS].values()[0] == 20.0  # events 40 - 20
        scaled = store.histogram(RUN, "EMC", FASTOR, min=1, max=3)
        np.testing.assert_allclose(scaled.values_flow, (fastor_flow(3) - fastor_flow(1)) / 20.0, rtol=1e-15)
        converted = whole.to_hist()
        np.testing.assert_array_equal(converted.variances(flow=True), odd_flow(3)[1])
        cache_dir = store.cache_dir
    assert not cache_dir.exists()  # the temporary cache goes with the reader


def test_bad_parameters_and_unknown_runs_or_names_raise(data_dir):
    with open_store(data_dir) as store:
        with pytest.raises(OptionsError) as error:
            store.histogram(RUN, "EMC", FASTOR, min="abc")
        assert error.value.field == "min"
        # As the data API: an option the subsystem lacks is an error, not a view without it.
        with pytest.raises(OptionsError, match="threshold: TPC has no such option") as error:
            store.histogram(RUN, "TPC", "any", threshold=0.5)
        assert error.value.field == "threshold"
        with pytest.raises(LookupError):
            store.histogram(RUN + 1, "EMC", FASTOR)
        with pytest.raises(KeyError):
            store.histogram(RUN, "EMC", "no such histogram")
    with pytest.raises(FileNotFoundError):
        open_store(data_dir / "missing")
