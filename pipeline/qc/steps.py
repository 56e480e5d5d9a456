"""The QC service's per-snapshot steps beyond the checks, built from the settings: trending, then
alarms, whose new firings wake the delivery thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.qc.alarm_config import load_alarm_config
from pipeline.qc.alarming import AlarmConsumer
from pipeline.qc.consumers import SnapshotConsumer
from pipeline.qc.delivery import Deliverer, DeliveryConfig
from pipeline.qc.trender import TrendConsumer
from pipeline.store import SnapshotStore


def trend_and_alarm_steps(
    data_dir: Path, settings: Any, deliver: bool = True
) -> tuple[list[SnapshotConsumer], Deliverer | None]:
    """The consumers (trends first: alarms read its rows) and the delivery thread, not yet started
    (None when `deliver` is off, e.g. for a rebuild, which must not mail old alarms again).
    Raises AlarmConfigError / DeliveryConfigError naming a bad setting before anything runs."""
    config = load_alarm_config(settings.alarms_config or None)
    delivery_config = DeliveryConfig.from_settings(settings)
    trends = TrendConsumer(SnapshotStore(data_dir))
    alarms = AlarmConsumer(data_dir, trends, config)
    deliverer = None
    if deliver:
        deliverer = Deliverer(alarms.book, delivery_config)
        alarms.on_events = deliverer.wake
    return [trends, alarms], deliverer
