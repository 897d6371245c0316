"""Training jobs: one SQLite record each, a FIFO queue, and the requests on them.

    from pathlib import Path
    from service.jobs import JobManager
    jobs = JobManager(Path("data"), Path("models_store"), max_concurrent=1)
    jobs.start()                    # re-attaches to trainers still running, interrupts the others
    job = jobs.submit({"dataset": {"synthetic": {"count": 256, "seed": 3}}, "preset": "tiny",
                           "config": {"total_steps": 30}, "model": "custom", "activate": False}, data_path=None)
    jobs.get(job.id).state          # queued, then running, then succeeded
    jobs.stop()                     # SIGTERM to running trainers (they checkpoint), jobs interrupted

The job's SQLite row (service/jobstore.py) is its record. A config is checked by a dry run of the
trainer before the job is queued (service/config_check.py); the supervisor thread (service/supervisor.py)
runs the job's phases as child processes in `<data_dir>/jobs/<id>/` and settles their ends. One service
process runs the jobs of a data dir (it holds `<data_dir>/jobs.lock`); another one sharing it only reads.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from service.config_check import check_config
from service.errors import JobConflict, JobNotFound
from service.files import write_atomic
from service.jobstore import FINISHED, Job, JobStore, now
from service.supervisor import Supervisor

log = logging.getLogger(__name__)

RESUMABLE = ("interrupted", "cancelled", "failed")


class JobManager:
    def __init__(
        self,
        data_dir: Path,
        models_dir: Path,
        max_concurrent: int = 1,
        stop_timeout: float = 60.0,
        on_exported: Callable[[str, int, bool], bool] | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.root = self.data_dir / "jobs"
        self.models_dir = models_dir.resolve()
        self.owner = False  # this process runs the jobs (holds data_dir/jobs.lock)
        self._lock = threading.RLock()  # guards the database (shared with the supervisor)
        self._supervisor = Supervisor(
            self.root, self.models_dir, self._lock, max_concurrent, stop_timeout, on_exported, poll_s
        )
        self._store: JobStore | None = None  # opened by start()
        self._lock_file: TextIO | None = None

    # Lifecycle.

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._store = JobStore(self.data_dir / "jobs.db")
        # One process runs the jobs of a data dir; another one sharing it (a replica) only reads them.
        self._lock_file = lock_file = open(self.data_dir / "jobs.lock", "a")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another service process runs the jobs of %s: this one only reads them", self.data_dir)
            return
        self.owner = True
        for debris in [*self.root.glob(".deleting-*"), *self.root.glob(".dry-run-*")]:
            shutil.rmtree(debris, ignore_errors=True)  # left by a process killed midway
        self._supervisor.start(self._store)

    def stop(self) -> None:
        """SIGTERM the running jobs' processes, wait for them (then SIGKILL), mark the jobs interrupted."""
        self._supervisor.stop()
        if self._store is not None:
            self._store.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock

    # Requests (from the routes).

    def submit(self, spec: dict, data_path: Path | None, images: int | None = None) -> Job:
        """Validate the config with a dry run (against `images`, the dataset's count, when known), then queue
        the job; data_path None: synthetic, made by the job."""
        self._require_owner()
        job_id = uuid.uuid4().hex[:12]
        job_dir = self.root / job_id
        path = data_path or job_dir / "synthetic.zip"
        resolved = check_config(spec["preset"], spec["config"], path, scratch=self.root, images=images)
        job_dir.mkdir(parents=True)
        write_atomic(job_dir / "overrides.json", json.dumps(spec["config"], indent=2))
        job = Job(job_id, now(), "queued", spec, str(path), time.time(), config=resolved)
        job.history.append({"state": "queued", "time": job.created, "detail": None})
        with self._lock:
            self._records().save(job)
        self._supervisor.wake()
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._records().get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        return job

    def newest_first(self) -> list[Job]:
        """All jobs, newest first."""
        with self._lock:
            return self._records().query("1 ORDER BY created DESC, queued_at DESC")

    def cancel(self, job_id: str) -> Job:
        """A queued job ends at once; a running one gets SIGTERM (it checkpoints) and ends cancelled."""
        self._require_owner()
        with self._lock:
            job = self.get(job_id)
            if job.state == "queued":
                self._records().transition(job, "cancelled", "cancelled while queued")
            elif job.state == "running":
                job.cancel_requested = True
                self._records().save(job)
                self._supervisor.signal(job, signal.SIGTERM)
                self._supervisor.wake()
            else:
                raise JobConflict(f"job {job_id} is {job.state}: only queued or running jobs can be cancelled")
            return job

    def resume(self, job_id: str) -> Job:
        """Queue an interrupted, cancelled or failed job again; it continues in the same run directory."""
        self._require_owner()
        with self._lock:
            job = self.get(job_id)
            if job.state not in RESUMABLE:
                raise JobConflict(f"job {job_id} is {job.state}: only {', '.join(RESUMABLE)} jobs can be resumed")
            job.cancel_requested, job.exit_status, job.error, job.finished = False, None, None, None
            job.queued_at = time.time()
            self._records().transition(job, "queued", "resumed")
        self._supervisor.wake()
        return job

    def delete(self, job_id: str) -> None:
        """Remove a finished job's record and its directory (run directory included)."""
        self._require_owner()
        with self._lock:
            job = self.get(job_id)
            if job.state not in FINISHED:
                raise JobConflict(f"job {job_id} is {job.state}: cancel it first, only finished jobs can be deleted")
            job_dir = self.job_dir(job)
            doomed = self.root / f".deleting-{job_id}"
            if job_dir.exists():
                os.rename(job_dir, doomed)  # the record and the directory go together
            self._records().delete(job_id)
        shutil.rmtree(doomed, ignore_errors=True)

    def uses_dataset(self, dataset_id: str) -> bool:
        """True when a queued or running job reads that uploaded dataset."""
        with self._lock:
            active = self._records().query("state IN ('queued', 'running')")
        return any(job.spec["dataset"] == dataset_id for job in active)

    # What a job's directory holds.

    def job_dir(self, job: Job) -> Path:
        return self._supervisor.job_dir(job)

    def run_dir(self, job: Job) -> Path:
        return self._supervisor.run_dir(job)

    def log_path(self, job: Job) -> Path:
        """The log worth showing: the failing or running dataset/export step's output, else run/train.log."""
        train_log = self.run_dir(job) / "train.log"
        empty = not train_log.exists() or train_log.stat().st_size == 0  # e.g. refused before it started
        if job.phase == "dataset" or (job.phase == "export" and job.state != "succeeded") or empty:
            return self.job_dir(job) / f"{job.phase if job.phase in ('dataset', 'export') else 'train'}.out"
        return train_log

    def animation(self, job: Job) -> Path | None:
        """run/training.gif (the trainer rewrites it after every preview frame); None before there is one."""
        gif = self.run_dir(job) / "training.gif"
        return gif if gif.exists() else None

    def _require_owner(self) -> None:
        if not self.owner:
            raise JobConflict(f"another service process runs the jobs of {self.data_dir}; send this there")

    def _records(self) -> JobStore:
        assert self._store is not None, "JobManager.start() opens the job store"
        return self._store
