"""What every page gets from the app factory: the settings and the processing service.

Pages reach data only through `service` (runs, views, receiver status): they never read status files or
store folders themselves. `background` is the Dash background-callback manager (diskcache under the
cache folder, shared by every worker), for work that takes seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.processing.service import ProcessingService
from pipeline.settings import Settings


@dataclass(frozen=True)
class PageContext:
    settings: Settings
    service: ProcessingService
    background: Any = None  # dash.DiskcacheManager, or None where background callbacks are off

    def unconfigured_subsystem(self, subsystem: str) -> str | None:
        """Why a per-subsystem page or download has nothing for `subsystem` (a 404 saying so): it is not
        a configured subsystem (names match exactly: `emc` is not `EMC`); None when it is."""
        configured = self.service.subsystems
        if subsystem in configured:
            return None
        return f"{subsystem} is not a configured subsystem (configured: {', '.join(configured)})."
