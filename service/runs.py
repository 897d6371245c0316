"""What the service reads from a training run directory, and how it recognises the run's processes.

    from pathlib import Path
    from service.runs import latest_frame, read_progress, read_status
    run = Path("data/jobs/0123456789ab/run")
    read_progress(run)          # the last progress line, the latest fidelity figures; None before any
    read_status(run)            # status.json: state, exit_status, pid, started, finished, error, step
    latest_frame(run)           # frames/step_<step>.png with the highest step, or None
    read_curves(run)            # every loss line as columns: step, d_loss, g_loss, wasserstein, gp

The run directory is the contract with the training side (see training/train.py); the service never
imports the training code, it reads these files. A progress line with a `d_loss` is a loss line; which of
its keys the service passes on is said once on the service side, by the API's schemas (service/schemas.py
`Progress` and `Curves`), not by a copy of the training's list. A process is identified by its pid *and*
its start time (from /proc/<pid>/stat), so a recycled pid is never taken for a trainer that has ended.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from service.schemas import Curves, Progress

_EXPORTED = re.compile(r"^exported (\S+) version (\d+) to ", re.M)


# Processes.


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None when it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of proc(5); fields[0] is field 3


def alive(pid: int | None, start: int | None) -> bool:
    """True when `pid` still runs and is the process that started at `start`."""
    return pid is not None and start is not None and process_start(pid) == start


# Files.


def tail_lines(path: Path, count: int = 20, max_bytes: int = 64 * 1024) -> list[str]:
    """The last `count` lines of a text file (reads at most its last `max_bytes`); [] when missing."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return []
    lines = data.decode(errors="replace").replace("\r", "\n").splitlines()
    if size > max_bytes:
        lines = lines[1:]  # the first one is probably cut
    return [line for line in lines if line.strip()][-count:]


def read_status(run_dir: Path) -> dict:
    """status.json as the trainer last wrote it; {} when absent or half-written."""
    try:
        return json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def read_progress(run_dir: Path) -> dict | None:
    """The latest progress figures of a run (with the latest fidelity figures), or None before any."""
    latest, fidelity, event = None, None, None
    for line in reversed(tail_lines(run_dir / "progress.jsonl", count=400, max_bytes=256 * 1024)):
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written
        if latest is None and "d_loss" in record:
            latest = record
        elif fidelity is None and "fidelity" in record:
            fidelity = {"step": record.get("step"), **record["fidelity"]}
        elif event is None and "event" in record and latest is None:
            event = record  # a start or resume newer than any loss line
        if latest is not None and fidelity is not None:
            break
    if latest is None:
        if event is None:
            return None
        latest = event  # its time, step and total_steps; no losses yet
    return {**{key: latest.get(key) for key in Progress.model_fields}, "fidelity": fidelity}


def read_curves(run_dir: Path) -> dict[str, list]:
    """The loss lines of a run as columns, by ascending step; a resumed run's later line for a step wins."""
    by_step: dict[int, dict] = {}
    try:
        lines = (run_dir / "progress.jsonl").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written
        if isinstance(record, dict) and "d_loss" in record and isinstance(record.get("step"), int):
            by_step[record["step"]] = record
    steps = sorted(by_step)
    return {key: [by_step[step].get(key) for step in steps] for key in Curves.model_fields}


def latest_frame(run_dir: Path) -> Path | None:
    """The newest preview frame (names carry the zero-padded step, so the last in order is the newest)."""
    frames = sorted((run_dir / "frames").glob("step_*.png"))
    return frames[-1] if frames else None


def exported_version(export_log: Path) -> tuple[str, int] | None:
    """(model, version) from `python -m training export`'s output, or None when it did not finish."""
    try:
        matches = _EXPORTED.findall(export_log.read_text(errors="replace"))
    except OSError:
        return None
    return (matches[-1][0], int(matches[-1][1])) if matches else None
