"""Built-in HLT merger emulator: synthetic EMC/TPC/HLT detectors, a run clock, and a ZMQ REP server.

`detectors` says what each subsystem publishes and fills per step; `runs` turns steps into runs that
accumulate like a real merger and remembers what was filled when; `merger` answers receivers over
ZeroMQ exactly as ZMQROOTmerger does (PROTOCOL.md sections 2 and 4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Import order matters: `detectors` must be complete before its per-subsystem modules load.
from pipeline.emulator.detectors import DETECTORS, Detector, HistogramSpec, Increment, make_detector
from pipeline.emulator.detectors_emc import HOT_FASTOR_IDS
from pipeline.emulator.runs import EmulatorConfig, RunSchedule, SyntheticRuns

if TYPE_CHECKING:
    from pipeline.emulator.merger import MergerEmulator, run_emulator_cli

__all__ = [
    "DETECTORS",
    "HOT_FASTOR_IDS",
    "Detector",
    "EmulatorConfig",
    "HistogramSpec",
    "Increment",
    "MergerEmulator",
    "RunSchedule",
    "SyntheticRuns",
    "make_detector",
    "run_emulator_cli",
]


def __getattr__(name: str) -> Any:
    # The server pulls in pyzmq and uproot; keep them out of plain detector imports.
    if name in ("MergerEmulator", "run_emulator_cli"):
        from pipeline.emulator import merger

        return getattr(merger, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
