"""Our Histogram as an uproot-writable ROOT model (TH1x/TH2x/TH3x), for TMessages and ROOT files alike.

Contents, sumw2, titles, axis titles, edges (variable bins kept) and entries are preserved, plus the fill
statistics ROOT keeps (fTsumw...), computed from the bin contents.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import uproot.writing.identify

from pipeline.histogram import Histogram

_DTYPE_BY_SUFFIX = {"D": np.float64, "F": np.float32, "I": np.int32, "S": np.int16, "C": np.int8}


def _root_axis(name: str, title: str, edges: np.ndarray) -> Any:
    uniform = np.allclose(np.diff(edges), (edges[-1] - edges[0]) / (len(edges) - 1))
    return uproot.writing.identify.to_TAxis(
        fName=name,
        fTitle=title,
        fNbins=len(edges) - 1,
        fXmin=float(edges[0]),
        fXmax=float(edges[-1]),
        fXbins=None if uniform else np.asarray(edges, dtype=np.float64),
    )


def model_from_histogram(histogram: Histogram, class_name: str | None = None, name: str | None = None) -> Any:
    """An uproot writable TH1x/TH2x/TH3x model with contents, sumw2, titles and entries preserved.

    `class_name` overrides the storage type (e.g. "TH2D" to export float32 data in double precision);
    `name` overrides fName (e.g. without the directory part a ROOT file keeps as a folder).
    """
    dimension = histogram.dimension
    dtype = _DTYPE_BY_SUFFIX.get((class_name or histogram.class_name)[-1:], np.float64)
    axis_names = ("xaxis", "yaxis", "zaxis")
    unit_edges = np.array([0.0, 1.0])  # ROOT gives unused axes one bin on [0, 1]
    axes = [
        _root_axis(
            axis_names[i],
            histogram.axis_titles[i],
            histogram.edges[i] if i < dimension else unit_edges,
        )
        for i in range(3)
    ]
    # ROOT stores bins with x varying fastest (Fortran order).
    data = histogram.values_flow.astype(dtype).ravel(order="F")
    # Unweighted fills have variances equal to contents; ROOT then stores no fSumw2 at all, which
    # halves the message and decodes back to the same variances.
    unweighted = np.array_equal(histogram.variances_flow, histogram.values_flow)
    sumw2 = None if unweighted else histogram.variances_flow.astype(np.float64).ravel(order="F")
    values = histogram.values()
    centers = [(e[1:] + e[:-1]) / 2 for e in histogram.edges]
    total = float(values.sum())
    moments: dict[str, float] = {"fTsumw": total, "fTsumw2": float(histogram.variances().sum())}
    for axis_index, letter in enumerate("xyz"[:dimension]):
        shape = [1] * dimension
        shape[axis_index] = -1
        center = centers[axis_index].reshape(shape)
        moments[f"fTsumw{letter}"] = float((values * center).sum())
        moments[f"fTsumw{letter}2"] = float((values * center * center).sum())
    common = {
        "fName": histogram.name if name is None else name,
        "fTitle": histogram.title,
        "data": data,
        "fEntries": histogram.entries,
        "fTsumw": moments["fTsumw"],
        "fTsumw2": moments["fTsumw2"],
        "fTsumwx": moments["fTsumwx"],
        "fTsumwx2": moments["fTsumwx2"],
        "fSumw2": sumw2,
        "fXaxis": axes[0],
    }
    identify = uproot.writing.identify
    if dimension == 1:
        return identify.to_TH1x(**common, fYaxis=axes[1], fZaxis=axes[2])
    if dimension == 2:
        xy = float((values * centers[0][:, None] * centers[1][None, :]).sum())
        return identify.to_TH2x(
            **common,
            fTsumwy=moments["fTsumwy"],
            fTsumwy2=moments["fTsumwy2"],
            fTsumwxy=xy,
            fYaxis=axes[1],
            fZaxis=axes[2],
        )
    cx, cy, cz = (c.reshape(s) for c, s in zip(centers, ((-1, 1, 1), (1, -1, 1), (1, 1, -1)), strict=True))
    return identify.to_TH3x(
        **common,
        fTsumwy=moments["fTsumwy"],
        fTsumwy2=moments["fTsumwy2"],
        fTsumwxy=float((values * cx * cy).sum()),
        fTsumwz=moments["fTsumwz"],
        fTsumwz2=moments["fTsumwz2"],
        fTsumwxz=float((values * cx * cz).sum()),
        fTsumwyz=float((values * cy * cz).sum()),
        fYaxis=axes[1],
        fZaxis=axes[2],
    )
