"""What the end of a job's phase process means: the next phase, or how the job ended and why.

    >>> from service.outcome import Ending, outcome
    >>> outcome(Ending("train", code=0, produced=True))
    ('running', 'export')
    >>> outcome(Ending("train", code=143, cancel_requested=True))
    ('cancelled', 'cancelled during train')
    >>> outcome(Ending("train", code=2, reason="g_sites 4 cannot draw 9 grains"))
    ('failed', 'g_sites 4 cannot draw 9 grains')

The job's SQLite row (service/jobstore.py) is the job's record. What a phase's process left behind (its
exit status, run/status.json, its output) is only evidence, gathered into an `Ending` by the job manager;
`outcome` is a pure function of it, so every case can be tested without a process.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

NEXT_PHASE = {"dataset": "train", "train": "export", "export": "publish"}
SIGNAL_EXITS = (130, 143, -signal.SIGINT, -signal.SIGTERM)  # a process stopped by SIGINT/SIGTERM


@dataclass(frozen=True)
class Ending:
    """What is known once a job's phase process has ended."""

    phase: str  # dataset | train | export
    code: int | None = None  # its exit status; None: unknown (not our child, and no status.json of its own)
    produced: bool = False  # what the phase makes exists: the dataset file, a succeeded run, an exported version
    run_state: str | None = None  # run/status.json's state, only when this very process wrote it
    reason: str | None = None  # its own one-line error: status.json's, else the last `error:` line it printed
    cancel_requested: bool = False  # a client cancelled the job while this phase ran
    stopping: bool = False  # the service is shutting down
    restarted: bool = False  # found ended when the service started (it ended while no service watched)


def outcome(end: Ending) -> tuple[str, str]:
    """("running", the next phase) when the job goes on; else (final state, detail). First match wins."""
    if end.phase == "export" and end.produced:
        return "running", "publish"  # the version exists: publish it even if cancelled meanwhile
    if end.produced and not (end.cancel_requested or end.stopping):
        return "running", NEXT_PHASE[end.phase]
    if end.cancel_requested:
        return "cancelled", f"cancelled during {end.phase}"
    if end.stopping:
        return "interrupted", f"service shut down during {end.phase}"
    if end.restarted and end.run_state != "failed":
        return "interrupted", f"the service restarted and the {end.phase} process was gone"
    if end.code in SIGNAL_EXITS or end.run_state == "interrupted":
        return "interrupted", f"{end.phase} stopped by a signal from outside the service"
    if end.reason:
        return "failed", end.reason
    if end.code is not None:
        return "failed", f"{end.phase} exited with status {end.code}"
    return "failed", f"{end.phase} process ended unrecorded"
