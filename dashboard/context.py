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
