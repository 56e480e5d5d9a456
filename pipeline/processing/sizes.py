"""How many bytes histograms keep alive: the weight of the processing service's in-memory caches.

A histogram read from a snapshot holds numpy views into its row group's column (one Arrow buffer for the
32 histograms of the group), so a view counts as the whole buffer it keeps from being freed, not as its
own few bins, and a buffer shared by several histograms counts once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

import numpy as np

from pipeline.histogram import Histogram

# The Python side of one histogram (its object, name and title, the array headers), roughly.
HISTOGRAM_OVERHEAD_BYTES = 1024


class HeldBuffers:
    """The bytes a changing set of histograms keeps alive (`nbytes`), kept up to date as histograms are
    added and removed, each buffer counted once: cheap enough to ask after every histogram a page reads.

    Remove only histograms that were added (the same objects): a buffer is known by its id while a
    histogram added here holds it alive."""

    def __init__(self) -> None:
        self.nbytes = 0
        self._buffers: dict[int, list[int]] = {}  # id of a buffer -> [histograms holding it, its bytes]

    def add(self, histograms: Iterable[Histogram]) -> None:
        for histogram in histograms:
            self.nbytes += HISTOGRAM_OVERHEAD_BYTES
            for buffer in _buffers(histogram):
                held = self._buffers.get(id(buffer))
                if held is None:
                    self._buffers[id(buffer)] = [1, buffer.nbytes]
                    self.nbytes += buffer.nbytes
                else:
                    held[0] += 1

    def remove(self, histograms: Iterable[Histogram]) -> None:
        for histogram in histograms:
            self.nbytes -= HISTOGRAM_OVERHEAD_BYTES
            for buffer in _buffers(histogram):
                held = self._buffers[id(buffer)]
                held[0] -= 1
                if held[0] == 0:
                    del self._buffers[id(buffer)]
                    self.nbytes -= held[1]


def held_bytes(histograms: Iterable[Histogram]) -> int:
    """Bytes the arrays of `histograms` keep alive, each buffer counted once."""
    held = HeldBuffers()
    held.add(histograms)
    return held.nbytes


def owning_its_arrays(histogram: Histogram) -> Histogram:
    """The same histogram with arrays of its own: kept for long (a page's reference), it then holds its
    bins, not the whole snapshot's buffers it was read from."""
    return replace(
        histogram,
        edges=tuple(np.array(edges) for edges in histogram.edges),
        values_flow=np.array(histogram.values_flow),
        variances_flow=np.array(histogram.variances_flow),
    )


def _buffers(histogram: Histogram) -> Iterator[np.ndarray]:
    """The arrays that own the memory of the histogram's numbers (a view's base, not the view)."""
    for array in (histogram.values_flow, histogram.variances_flow, *histogram.edges):
        while isinstance(array.base, np.ndarray):
            array = array.base
        yield array
