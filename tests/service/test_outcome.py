"""The end of a job's phase, case by case: what service.outcome makes of the evidence a process leaves."""

from __future__ import annotations

import pytest

from service.outcome import Ending, outcome

CASES = [
    # A phase that made its product hands over to the next one.
    (Ending("dataset", code=0, produced=True), ("running", "train")),
    (Ending("train", code=0, produced=True, run_state="succeeded"), ("running", "export")),
    (Ending("train", code=None, produced=True, run_state="succeeded", restarted=True), ("running", "export")),
    (Ending("export", code=0, produced=True), ("running", "publish")),
    # An exported version is published even when the job was cancelled or the service is stopping.
    (Ending("export", code=0, produced=True, cancel_requested=True), ("running", "publish")),
    (Ending("export", code=0, produced=True, stopping=True), ("running", "publish")),
    # Otherwise a cancel, then a shutdown, decide.
    (Ending("train", code=0, produced=True, cancel_requested=True), ("cancelled", "cancelled during train")),
    (Ending("train", code=143, cancel_requested=True, stopping=True), ("cancelled", "cancelled during train")),
    (Ending("dataset", code=0, produced=True, stopping=True), ("interrupted", "service shut down during dataset")),
    (Ending("train", code=143, stopping=True), ("interrupted", "service shut down during train")),
    # Found ended at a restart: interrupted, unless the run recorded a failure of its own.
    (
        Ending("train", restarted=True, run_state="running"),
        ("interrupted", "the service restarted and the train process was gone"),
    ),
    (
        Ending("export", restarted=True),
        ("interrupted", "the service restarted and the export process was gone"),
    ),
    (Ending("train", code=2, restarted=True, run_state="failed", reason="bad data"), ("failed", "bad data")),
    # Stopped by a signal from outside the service.
    (Ending("train", code=143), ("interrupted", "train stopped by a signal from outside the service")),
    (Ending("train", code=-15), ("interrupted", "train stopped by a signal from outside the service")),
    (Ending("dataset", code=130), ("interrupted", "dataset stopped by a signal from outside the service")),
    (
        Ending("train", code=None, run_state="interrupted"),
        ("interrupted", "train stopped by a signal from outside the service"),
    ),
    # Failures: the process's own reason, else its exit status, else that nothing recorded its end.
    (Ending("train", code=2, run_state="failed", reason="g_sites 4 < 9 grains"), ("failed", "g_sites 4 < 9 grains")),
    (Ending("dataset", code=1), ("failed", "dataset exited with status 1")),
    (Ending("export", code=0), ("failed", "export exited with status 0")),  # it printed no exported version
    (Ending("train", code=None), ("failed", "train process ended unrecorded")),
    (Ending("train", code=-9), ("failed", "train exited with status -9")),  # SIGKILL is not a clean stop
]


@pytest.mark.parametrize(("end", "expected"), CASES)
def test_outcome_of_each_ending(end, expected):
    assert outcome(end) == expected
