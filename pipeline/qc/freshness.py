"""Whether a QC verdict is still current: the one rule pages use before showing one as "now".

The QC service checks every snapshot as it lands, oldest first, so in a working system a stored
snapshot waits at most a few QC cycles for its verdict. A verdict is stale when a snapshot newer than
the one it judged has been waiting longer than that grace (`verdict_grace_s`): the service is stopped,
hung or far behind, and the verdict says nothing about the data now on screen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.liveness import GRACE_S

QC_CYCLES_OF_GRACE = 3


def verdict_grace_s(qc_poll_s: float) -> float:
    """How long a new snapshot may wait for its verdict: a few of the QC service's cycles (a cycle at
    least 1 s: the service rewrites its status at most once a second) and the liveness slack."""
    return QC_CYCLES_OF_GRACE * max(qc_poll_s, 1.0) + GRACE_S


@dataclass(frozen=True)
class VerdictAge:
    age_s: float  # of the snapshot the verdict judged
    stale: bool
    unchecked: int  # stored snapshots newer than it


def verdict_age(verdict_epoch: float, snapshot_epochs: np.ndarray, now: float, grace_s: float) -> VerdictAge:
    """How old a verdict is and whether it is stale, from the epochs of the stored snapshots of its
    run and subsystem (any order)."""
    newer = np.sort(snapshot_epochs[snapshot_epochs > verdict_epoch])
    waiting_s = now - float(newer[0]) if newer.size else 0.0
    return VerdictAge(max(0.0, now - verdict_epoch), waiting_s > grace_s, int(newer.size))
