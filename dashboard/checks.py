"""Check results under the plot: quality badge, message, threshold and the channels it flagged.

Pure functions of the plug-in's `CheckResult`s (no Dash callbacks), so what the shift crew reads
("4 hot FastORs above 0.01") is unit-tested without a browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import dash_bootstrap_components as dbc
from dash import html

from pipeline.detectors.base import CheckResult
from pipeline.wording import counted

# O2 QualityControl's traffic lights.
QUALITY_COLORS = {"Good": "success", "Medium": "warning", "Bad": "danger", "Null": "secondary"}
# Up to this many channel ids are shown inline; more go behind a "show all" toggle.
INLINE_IDS = 24
PREVIEW_CHARS = 80  # of the folded id ranges shown before "show all"
GRID_LINES = 8  # verdicts on a grid's members listed one per line; the rest counted
WORST_FIRST = ("Bad", "Medium", "Null", "Good")
# Typed fields shown on their own lines; also written into `details` for older readers.
_SHOWN_ELSEWHERE = {
    "threshold",
    "threshold_source",
    "per_event",
    "hot_channel_ids",
    "flagged_ids",
    "outlier_bins",
}
_SOURCES = {"default": "per-histogram default", "user": "your value"}


def check_results_panel(checks: Sequence[CheckResult]) -> html.Div:
    """One block per check; a quiet line when the histogram has no checks."""
    if not checks:
        return html.Div("No checks for this histogram.", className="text-muted no-checks")
    return html.Div([_check_block(check) for check in checks], className="check-list")


class MemberVerdict(NamedTuple):
    """One check's verdict on one member of a grid, as the grid's check list shows it."""

    label: str  # the member's display name ("FastOR L0 · SM 5")
    quality: str
    title: str  # the check's title
    message: str
    source: str  # "page" (run on what is shown) or "QC" (the QC service, newest checked snapshot)


def grid_checks_panel(verdicts: Sequence[MemberVerdict], n_members: int) -> html.Div:
    """The checks of a grid's members, one compact line each, worst first; Good ones only counted.
    Says where the verdicts come from, so a Bad in the quality strip above is explained here."""
    if not verdicts:
        return html.Div(f"No checks for these {n_members} histograms.", className="text-muted no-checks")
    rank = {quality: index for index, quality in enumerate(WORST_FIRST)}
    ordered = sorted(verdicts, key=lambda v: (rank.get(v.quality, len(rank)), v.label, v.title))
    shown = [verdict for verdict in ordered if verdict.quality != "Good"]
    n_good = len(ordered) - len(shown)
    sources = sorted({verdict.source for verdict in ordered})
    where = " and ".join(
        "the QC service's newest verdicts" if s == "QC" else "what is shown" for s in sources
    )
    header = f"Checks of the {n_members} histograms in this grid, worst first (from {where})"
    lines: list[Any] = [html.Div(header, className="grid-checks-header small text-muted")]
    for verdict in shown[:GRID_LINES]:
        color = QUALITY_COLORS.get(verdict.quality, "secondary")
        lines.append(
            html.Div(
                [
                    dbc.Badge(verdict.quality, color=color, className="quality-badge me-2"),
                    html.Span(verdict.label, className="check-member me-2 fw-semibold"),
                    html.Span(verdict.title, className="check-name me-2"),
                    html.Span(verdict.message, className=f"check-message text-{color}-emphasis"),
                ],
                className=f"grid-check border-start border-4 border-{color} ps-2",
            )
        )
    more = len(shown) - GRID_LINES
    good = f"{'all ' if not shown else ''}{counted(n_good, 'check')} Good"
    tail = [f"{more} more not Good" if more > 0 else "", good if n_good else ""]
    if any(tail):
        lines.append(
            html.Div(" · ".join(t for t in tail if t), className="grid-checks-more small text-muted")
        )
    return html.Div(lines, className="check-list grid-checks")


def threshold_placeholder(checks: Sequence[CheckResult]) -> str | None:
    """'default 0.01' when a check of this histogram used its built-in threshold, else None."""
    for check in checks:
        if check.threshold_source == "default" and check.threshold is not None:
            unit = " per event" if check.per_event else ""
            return f"default {check.threshold:g}{unit}"
    return None


def threshold_line(check: CheckResult) -> str | None:
    """'threshold 0.01 entries/event · per-histogram default' (None if the check has no threshold)."""
    if check.threshold is None:
        return None
    unit = "entries/event" if check.per_event else "entries"
    source = _SOURCES.get(check.threshold_source, check.threshold_source)
    return " · ".join(part for part in (f"threshold {check.threshold:g} {unit}", source) if part)


def check_title(check: CheckResult) -> str:
    """What the page calls the check: the plug-in's title, its name when it declared none."""
    return check.title or check.check


def _check_block(check: CheckResult) -> html.Div:
    color = QUALITY_COLORS.get(check.quality, "secondary")
    header = html.Div(
        [
            dbc.Badge(check.quality, color=color, className="quality-badge me-2"),
            html.Span(check_title(check), className="check-name me-2"),
            html.Span(check.message, className=f"check-message text-{color}-emphasis"),
        ],
        className="check-header",
    )
    lines: list[Any] = [header]
    if (threshold := threshold_line(check)) is not None:
        lines.append(html.Div(threshold, className="check-threshold"))
    other = _other_details(check.details)
    if other:
        lines.append(html.Div(other, className="check-details small text-muted"))
    if check.flagged_ids:
        lines.append(_id_list(check.flagged_ids, check.id_label or "channel ids"))
    return html.Div(lines, className=f"check-block check-{check.check} border-start border-4 border-{color}")


def _id_list(ids: Sequence[int], what: str) -> html.Div | html.Details:
    """A few ids as pills; more as a count and compact ranges ("12–15, 40"), the full list on demand in
    one text block: thousands of flagged channels must not become thousands of page elements."""
    if len(ids) <= INLINE_IDS:
        pills = [html.Span(str(channel_id), className="hot-id") for channel_id in ids]
        return html.Div([html.Span(f"{what}: ", className="id-label"), *pills], className="hot-ids")
    ranges = compact_ranges(ids)
    preview = ranges if len(ranges) <= PREVIEW_CHARS else ranges[:PREVIEW_CHARS].rsplit(",", 1)[0] + ", …"
    return html.Details(
        [
            html.Summary(
                [
                    html.Span(f"{len(ids):,} {what} — show all", className="id-summary"),
                    html.Span(f": {preview}"),
                ],
            ),
            html.Div(ranges, className="hot-ids-all"),
        ],
        className="hot-ids-details",
    )


def compact_ranges(ids: Sequence[int]) -> str:
    """Sorted ids with runs of consecutive ones folded: [1, 2, 3, 7, 9, 10] -> "1–3, 7, 9–10"."""
    parts: list[str] = []
    ordered = sorted(int(i) for i in ids)
    start = previous = None
    for channel_id in [*ordered, None]:
        if channel_id is not None and previous is not None and channel_id == previous + 1:
            previous = channel_id
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}–{previous}")
        start = previous = channel_id
    return ", ".join(parts)


def _other_details(details: dict[str, Any]) -> str:
    parts = []
    for key, value in details.items():
        if key in _SHOWN_ELSEWHERE:
            continue
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{key.replace('_', ' ')} {shown}")
    return " · ".join(parts)
