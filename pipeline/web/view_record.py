"""A view as data for machines: what its window was (asked, returned, snapshots) and the one writer of
"a view as Parquet", used by the data API and by the run page's download alike.

The Parquet file is snapshot-shaped (the store's schema, `store_schema`), so any Parquet tool reads it
as a stored file; its rows are the histograms as shown (window, mode and options applied, scaled where
the detector scales). The footer says so under `overwatch_ng.view`: the window asked for and returned
with the snapshots used, the mode, the parameters and options, the event count, and per histogram
whether it was scaled and its checks. `overwatch_ng.snapshot` names the newest snapshot used.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import pyarrow.parquet as pq

from pipeline.detectors.base import CheckResult, ProcessedHistogram
from pipeline.processing.query import ViewQuery
from pipeline.processing.service import ProcessedView
from pipeline.processing.timeslice import MergerMode, Window
from pipeline.store_schema import SnapshotMeta, format_snapshot_id, histograms_to_table, parse_snapshot_id
from pipeline.web.responses import jsonable

VIEW_FOOTER_KEY = b"overwatch_ng.view"


def window_dict(window: Window | None) -> dict[str, float] | None:
    if window is None:
        return None
    return {"min": round(window.min_minutes, 6), "max": round(window.max_minutes, 6)}


def window_record(view: ProcessedView) -> dict[str, Any]:
    """The window asked for, the one the snapshots allowed, and which snapshots made it."""
    plan = view.plan
    return {
        "requested": window_dict(plan.requested),
        "returned": window_dict(plan.returned),
        "mode": plan.mode,
        "description": view.description,
        "snapshots": list(plan.used_snapshot_ids),
    }


def checks_record(checks: Sequence[CheckResult]) -> list[dict[str, Any]]:
    return [
        {"check": check.check, "quality": check.quality, "message": check.message, "details": check.details}
        for check in checks
    ]


def view_footer(view: ProcessedView, query: ViewQuery, shown: Sequence[ProcessedHistogram]) -> dict[str, Any]:
    """What a Parquet file of `shown` (histograms of `view`) says about itself."""
    return {
        "run": view.run.run,
        "subsystem": view.run.subsystem,
        "source_subsystem": view.run.source_subsystem,
        "window": window_record(view),
        "parameters": query.to_params(),
        "options": asdict(view.options),
        "n_events": view.n_events,
        "warnings": view.warnings,
        "histograms": [
            {
                "name": processed.histogram.name,
                "class_name": processed.histogram.class_name,
                "title": processed.histogram.title,
                "scaled_by_events": processed.scaled_by_events,
                "checks": checks_record(processed.checks),
            }
            for processed in shown
        ],
    }


def view_parquet(view: ProcessedView, query: ViewQuery, shown: Sequence[ProcessedHistogram]) -> bytes:
    """`shown` as one snapshot-shaped Parquet file, its footer saying what view it is (module doc)."""
    plan = view.plan
    newest = plan.used_snapshot_ids[-1] if plan.used_snapshot_ids else None
    key = parse_snapshot_id(newest) if newest else None
    meta = SnapshotMeta(
        run=view.run.run,
        subsystem=view.run.subsystem,
        snapshot_time_utc=key.snapshot_time_utc if key else view.run.end_utc,
        hlt_mode=view.run.hlt_mode,
        beam_type=view.run.beam_type,
        merger_reset=plan.mode is MergerMode.RESET,
    )
    table = histograms_to_table(newest or format_snapshot_id(meta), meta, [p.histogram for p in shown])
    footer = json.dumps(jsonable(view_footer(view, query, shown))).encode()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), VIEW_FOOTER_KEY: footer})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
