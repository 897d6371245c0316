"""The job records: one SQLite row per job under the data dir, its document a JSON `Job`.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from service.jobstore import Job, JobStore, now
    >>> store = JobStore(Path(tempfile.mkdtemp()) / "jobs.db")
    >>> store.save(Job("abc", now(), "queued", spec={}, data_path="d.zip", queued_at=0.0))
    >>> [job.id for job in store.query("state = 'queued'")]
    ['abc']

This row is THE job's record: what its processes leave in the run directory is only evidence, read
when they end (service/outcome.py). WAL journaling lets a replica sharing the data dir read while the
owner writes. The caller serialises access (the job manager and its supervisor share one lock).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import sqlite3
from pathlib import Path

FINISHED = ("succeeded", "failed", "cancelled", "interrupted")
log = logging.getLogger(__name__)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


@dataclasses.dataclass
class Job:
    id: str
    created: str
    state: str  # queued | running | succeeded | failed | cancelled | interrupted
    spec: dict  # as submitted: dataset, preset, config, model, activate
    data_path: str  # the dataset file the trainer reads
    queued_at: float  # FIFO order (set again on resume)
    config: dict | None = None  # the resolved training config (from the dry run)
    # dataset | train | export | publish (rescan, activate): running now, or the last one run.
    phase: str | None = None
    pid: int | None = None  # of the running phase's process (its process group id too)
    pid_start: int | None = None  # its start time, clock ticks since boot: tells a recycled pid apart
    started: str | None = None
    finished: str | None = None
    exit_status: int | None = None
    error: str | None = None
    cancel_requested: bool = False
    exported: dict | None = None  # {model, version, activated} on success
    history: list[dict] = dataclasses.field(default_factory=list)  # {state, time, detail}


class JobStore:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, created TEXT, queued_at REAL, state TEXT, doc TEXT)"
        )

    def save(self, job: Job) -> None:
        doc = json.dumps(dataclasses.asdict(job))
        self._db.execute(
            "INSERT OR REPLACE INTO jobs (id, created, queued_at, state, doc) VALUES (?, ?, ?, ?, ?)",
            (job.id, job.created, job.queued_at, job.state, doc),
        )

    def transition(self, job: Job, state: str, detail: str | None) -> None:
        """Move the job to `state`, noted in its history, and save it."""
        stamp = now()
        job.state = state
        job.history.append({"state": state, "time": stamp, "detail": detail})
        if state == "running" and job.started is None:
            job.started = stamp
        if state in FINISHED:
            job.finished, job.pid, job.pid_start = stamp, None, None
            log.info("job %s %s: %s", job.id, state, detail)
        self.save(job)

    def get(self, job_id: str) -> Job | None:
        jobs = self.query("id = ?", (job_id,))
        return jobs[0] if jobs else None

    def query(self, where: str, params: tuple = ()) -> list[Job]:
        """Jobs matching an SQL condition on the columns id, created, queued_at, state."""
        rows = self._db.execute(f"SELECT doc FROM jobs WHERE {where}", params).fetchall()
        return [Job(**json.loads(doc)) for (doc,) in rows]

    def delete(self, job_id: str) -> None:
        self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def close(self) -> None:
        self._db.close()
