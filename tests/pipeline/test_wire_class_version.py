"""The TH1 class version a reply's histograms came in, read from the frames (recorded by every source)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.histogram import Histogram
from pipeline.wire.class_version import reply_th1_version, th1_version_of
from pipeline.wire.messages import build_reply, format_info
from pipeline.wire.run2_layout import encode_tmessage_in_versions
from pipeline.wire.tmessage import open_message


def histogram(dimension: int) -> Histogram:
    shape = (6, 5, 4)[:dimension]
    edges = tuple(np.arange(n - 1.0) for n in shape)
    counts = np.arange(np.prod(shape), dtype=float).reshape(shape)
    return Histogram(f"h{dimension}", f"TH{dimension}D", "t", edges, counts, counts, float(counts.sum()))


@pytest.mark.parametrize("dimension", [1, 2, 3])
@pytest.mark.parametrize(("asked", "found"), [(None, 8), (7, 7)])
def test_the_version_of_th1_under_each_class(dimension, asked, found):
    message = encode_tmessage_in_versions(histogram(dimension), asked)
    assert th1_version_of(open_message(message)) == found
    frames = build_reply(format_info(1, "B", ""), [(f"h{dimension}", message)])
    assert reply_th1_version(frames) == found


def test_a_reply_without_histograms_says_nothing():
    assert reply_th1_version(build_reply(format_info(0, "B", ""), [])) is None
    assert reply_th1_version(build_reply(format_info(1, "B", ""), [("bad", b"\0" * 40)])) is None
