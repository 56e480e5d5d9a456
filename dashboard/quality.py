"""Each subsystem's aggregated quality now, for the pages that list runs and subsystems (runs page,
control-room tiles): one read of the QC layer per (run, subsystem) and one colour rule.

`subsystem_quality(service, run)` is what a control-room tile needs: {subsystem: Good/Medium/Bad/Null,
or None when the QC service has not checked it}.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dashboard.checks import QUALITY_COLORS
from pipeline.processing.service import ProcessingService

QUALITY_LEGEND = "Subsystem quality now (QC): red Bad · yellow Medium · green Good · blue not checked yet"


def subsystem_quality(
    service: ProcessingService, run: int, subsystems: Sequence[str] | None = None
) -> dict[str, str | None]:
    """The aggregated quality of each subsystem of `run` (default: the service's subsystems)."""
    return {system: service.subsystem_quality(run, system) for system in subsystems or service.subsystems}


def run_qualities(
    service: ProcessingService, runs: Iterable[tuple[int, Sequence[str]]]
) -> dict[tuple[int, str], str | None]:
    """(run, subsystem) -> quality for the listed runs and their subsystems with data."""
    return {
        (run, system): quality
        for run, systems in runs
        for system, quality in subsystem_quality(service, run, systems).items()
    }


def quality_button_class(quality: str | None) -> str:
    """Bootstrap button classes of a subsystem link: filled red/yellow when Bad/Medium, green outline
    when Good, the plain outline when not checked."""
    if quality in ("Bad", "Medium"):
        return f"btn-{QUALITY_COLORS[quality]}"
    if quality in QUALITY_COLORS:
        return f"btn-outline-{QUALITY_COLORS[quality]}"
    return "btn-outline-primary"


def quality_title(subsystem: str, quality: str | None) -> str:
    return f"{subsystem} quality now: {quality or 'not checked yet'}"
