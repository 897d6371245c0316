"""Training jobs: one SQLite record each, a FIFO queue, and a supervisor thread running the training CLI.

    from pathlib import Path
    from service.jobs import JobManager
    jobs = JobManager(Path("data"), Path("models_store"), max_concurrent=1)
    jobs.start()                    # re-attaches to trainers still running, interrupts the others
    job = jobs.submit({"dataset": {"synthetic": {"count": 256, "seed": 3}}, "preset": "tiny",
                           "config": {"total_steps": 30}, "model": "custom", "activate": False}, data_path=None)
    jobs.get(job.id).state          # queued, then running, then succeeded
    jobs.stop()                     # SIGTERM to running trainers (they checkpoint), jobs interrupted

A job lives in `<data_dir>/jobs/<id>/` and runs these child processes in turn, each in its own session
(so its process group can be signalled, and it outlives a killed service), output in `<phase>.out`:

  dataset  `python -m training dataset --out synthetic.zip ...`   (synthetic datasets, once)
  train    `python -m training train --data ... --run-dir run ...` (the same command resumes run/)
  export   `python -m training export --run-dir run --store <models_dir> --name <model>`

The service never imports the training code: it validates configs with `train --dry-run` and reads
the run directory (service/runs.py). A job recorded as running when the service starts is re-attached
when its process (pid and start time) still lives; otherwise its end is read from run/status.json, or
it is marked interrupted: never left running.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from service.errors import ConfigRejected, JobConflict, JobNotFound
from service.jobstore import Job, JobStore, now
from service.runs import alive, error_line, exported_version, latest_frame, process_start, read_status

log = logging.getLogger(__name__)

FINISHED = ("succeeded", "failed", "cancelled", "interrupted")
RESUMABLE = ("interrupted", "cancelled", "failed")
SIGNAL_EXITS = (130, 143, -signal.SIGINT, -signal.SIGTERM)  # a trainer stopped by SIGINT/SIGTERM
DRY_RUN_TIMEOUT_S = 120
GIF_TIMEOUT_S = 300


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
        self.max_concurrent = max_concurrent
        self.stop_timeout = stop_timeout
        self.on_exported = on_exported  # rescan the store (and activate); returns whether it was activated
        self.poll_s = poll_s
        self.owner = False  # this process runs the jobs (holds data_dir/jobs.lock)
        # The children's environment: the service's, less the admin key (a trainer has no use for it).
        self.env = {k: v for k, v in os.environ.items() if k != "MICROGAN_API_KEY"}
        self.env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self._store: JobStore | None = None  # opened by start()
        self._lock = threading.RLock()  # guards the database and _procs
        self._procs: dict[str, subprocess.Popen] = {}  # the children this process started
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_file: TextIO | None = None
        self._gif_lock = threading.Lock()  # one `training gif` at a time

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
        with self._lock:
            self._recover()
        self._thread = threading.Thread(target=self._supervise, name="job-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """SIGTERM the running jobs' processes, wait for them (then SIGKILL), mark the jobs interrupted."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        if self.owner:
            with self._lock:
                pending = self._query("state = 'running'")
                for job in pending:
                    log.info("stopping job %s (%s, pid %s)", job.id, job.phase, job.pid)
                    self._signal(job, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            while pending:
                if time.monotonic() > deadline:
                    for job in pending:
                        log.warning("job %s: %s did not exit after SIGTERM; killing it", job.id, job.phase)
                        self._signal(job, signal.SIGKILL)
                    deadline = time.monotonic() + 10
                time.sleep(0.1)
                with self._lock:
                    pending = [job for job in pending if not self._check(job)]
            with self._lock:
                publishing = [job for job in self._query("state = 'running'") if job.phase == "publish"]
            for job in publishing:
                self._publish(job)
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
        resolved = self.check_config(spec["preset"], spec["config"], path, images)
        job_dir.mkdir(parents=True)
        (job_dir / "overrides.json").write_text(json.dumps(spec["config"], indent=2))
        job = Job(job_id, now(), "queued", spec, str(path), time.time(), config=resolved)
        job.history.append({"state": "queued", "time": job.created, "detail": None})
        with self._lock:
            self._save(job)
        self._wake.set()
        return job

    def check_config(self, preset: str | None, overrides: dict, data_path: Path, images: int | None = None) -> dict:
        """The config the trainer would resolve; ConfigRejected naming the bad key or preset (or a batch
        larger than the dataset's `images`)."""
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".dry-run-") as tmp:
            config_file = Path(tmp) / "overrides.json"
            config_file.write_text(json.dumps(overrides))
            command = self._training("train", "--data", data_path, "--run-dir", Path(tmp) / "run")
            command += ["--config", str(config_file), "--dry-run"] + ([f"--preset={preset}"] if preset else [])
            command += ["--images", str(images)] if images is not None else []
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=DRY_RUN_TIMEOUT_S, env=self.env, cwd=tmp
            )
        if result.returncode == 2:
            reason = next((ln for ln in reversed(result.stderr.splitlines()) if ln.startswith("error: ")), "error: ?")
            raise ConfigRejected(reason.removeprefix("error: ").replace(str(config_file), "config"))
        if result.returncode != 0:
            raise RuntimeError(f"train --dry-run exited {result.returncode}: {result.stderr[-2000:]}")
        return json.loads(result.stdout)["config"]

    def get(self, job_id: str) -> Job:
        with self._lock:
            jobs = self._query("id = ?", (job_id,))
        if not jobs:
            raise JobNotFound(f"no job {job_id!r}")
        return jobs[0]

    def newest_first(self) -> list[Job]:
        """All jobs, newest first."""
        with self._lock:
            return self._query("1 ORDER BY created DESC, queued_at DESC")

    def cancel(self, job_id: str) -> Job:
        """A queued job ends at once; a running one gets SIGTERM (it checkpoints) and ends cancelled."""
        self._require_owner()
        with self._lock:
            job = self.get(job_id)
            if job.state == "queued":
                self._transition(job, "cancelled", "cancelled while queued")
            elif job.state == "running":
                job.cancel_requested = True
                self._save(job)
                self._signal(job, signal.SIGTERM)
                self._wake.set()
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
            self._transition(job, "queued", "resumed")
        self._wake.set()
        return job

    def delete(self, job_id: str) -> None:
        """Remove a finished job's record and its directory (run directory included)."""
        self._require_owner()
        with self._lock:
            job = self.get(job_id)
            if job.state not in FINISHED:
                raise JobConflict(f"job {job_id} is {job.state}: cancel it first, only finished jobs can be deleted")
            job_dir = self.root / job_id
            doomed = self.root / f".deleting-{job_id}"
            if job_dir.exists():
                os.rename(job_dir, doomed)  # the record and the directory go together
            self._records().delete(job_id)
        shutil.rmtree(doomed, ignore_errors=True)

    def uses_dataset(self, dataset_id: str) -> bool:
        """True when a queued or running job reads that uploaded dataset."""
        with self._lock:
            active = self._query("state IN ('queued', 'running')")
        return any(job.spec["dataset"] == dataset_id for job in active)

    def job_dir(self, job: Job) -> Path:
        return self.root / job.id

    def run_dir(self, job: Job) -> Path:
        return self.root / job.id / "run"

    def log_path(self, job: Job) -> Path:
        """The log worth showing: the failing or running dataset/export step's output, else run/train.log."""
        train_log = self.run_dir(job) / "train.log"
        empty = not train_log.exists() or train_log.stat().st_size == 0  # e.g. refused before it started
        if job.phase == "dataset" or (job.phase == "export" and job.state != "succeeded") or empty:
            return self.job_dir(job) / f"{job.phase if job.phase in ('dataset', 'export') else 'train'}.out"
        return train_log

    def animation(self, job: Job) -> Path | None:
        """run/training.gif, assembled again (`python -m training gif`) when a frame is newer; None: no frames."""
        run_dir = self.run_dir(job)
        frame = latest_frame(run_dir)
        if frame is None:
            return None
        gif = run_dir / "training.gif"
        with self._gif_lock:
            if not gif.exists() or gif.stat().st_mtime_ns < frame.stat().st_mtime_ns:
                subprocess.run(
                    self._training("gif", run_dir),
                    capture_output=True,
                    timeout=GIF_TIMEOUT_S,
                    env=self.env,
                    cwd=self.job_dir(job),
                )
        return gif if gif.exists() else None

    # The supervisor.

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                with self._lock:
                    for job in self._query("state = 'running'"):
                        self._check(job)
                    publishing = [job for job in self._query("state = 'running'") if job.phase == "publish"]
                for job in publishing:
                    self._publish(job)
                self._start_queued()
            except Exception:  # a bug here must not end supervision of the other jobs
                log.exception("job supervisor")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _check(self, job: Job) -> bool:
        """Handle the end of the job's current process, if it has ended; True when it has."""
        job = self.get(job.id)  # the latest record (a cancel may have flagged it)
        if job.state != "running" or job.phase == "publish":
            return True
        process = self._procs.get(job.id)
        if process is not None:
            code = process.poll()
            if code is None:
                return False
            del self._procs[job.id]
        elif alive(job.pid, job.pid_start):
            return False  # re-attached after a restart: not our child, so no exit status until it ends
        else:
            code = None
        self._ended(job, code)
        return True

    def _start_queued(self) -> None:
        with self._lock:
            free = self.max_concurrent - len(self._query("state = 'running'"))
            for job in self._query("state = 'queued' ORDER BY queued_at")[: max(free, 0)]:
                if self._stopping.is_set():
                    return
                self._spawn(job, self._next_phase(job))

    def _recover(self) -> None:
        """At start: re-attach to jobs whose process still lives; settle the others from their files."""
        for job in self._query("state = 'running'"):
            if job.phase == "publish":
                continue  # exported before the restart: the supervisor publishes it
            if alive(job.pid, job.pid_start):
                log.info("job %s: re-attached to its %s process %s", job.id, job.phase, job.pid)
                job.history.append({"state": "running", "time": now(), "detail": f"re-attached to pid {job.pid}"})
                self._save(job)
            else:
                self._ended(job, None, restarted=True)

    def _next_phase(self, job: Job) -> str:
        if "synthetic" in job.spec["dataset"] and not Path(job.data_path).exists():
            return "dataset"
        if read_status(self.run_dir(job)).get("state") == "succeeded":
            return "export"  # resumed after the training had finished
        return "train"

    def _ended(self, job: Job, code: int | None, restarted: bool = False) -> None:
        """The job's current process ended with `code` (None: unknown, not our child): next phase or end."""
        phase, output = job.phase, self.job_dir(job) / f"{job.phase}.out"
        status = read_status(self.run_dir(job)) if phase == "train" else {}
        recorded = status.get("pid") == job.pid  # status.json was written by this very process
        if code is None and recorded:
            code = status.get("exit_status")
        exported = exported_version(output) if phase == "export" and code in (0, None) else None
        if phase == "dataset":
            ok = code == 0 or (code is None and Path(job.data_path).exists())
        elif phase == "train":
            ok = code == 0 or (recorded and status.get("state") == "succeeded")
        else:
            ok = exported is not None
        job.exit_status = code

        if exported is not None:
            # Published by the supervisor outside the lock: a rescan loads the model, which takes seconds.
            job.phase, job.pid, job.pid_start = "publish", None, None
            job.exported = {"model": exported[0], "version": exported[1], "activated": False}
            self._save(job)
        elif ok and not (job.cancel_requested or self._stopping.is_set()):
            self._spawn(job, "train" if phase == "dataset" else "export")
        elif job.cancel_requested:
            self._transition(job, "cancelled", f"cancelled during {phase}")
        elif self._stopping.is_set():
            self._transition(job, "interrupted", f"service shut down during {phase}")
        elif restarted and not (recorded and status.get("state") == "failed"):
            self._transition(job, "interrupted", f"the service restarted and the {phase} process was gone")
        elif code in SIGNAL_EXITS or (recorded and status.get("state") == "interrupted"):
            self._transition(job, "interrupted", f"{phase} stopped by a signal from outside the service")
        else:
            job.error = (
                (status.get("error") if recorded else None)
                or error_line(output)
                or (f"{phase} exited with status {code}" if code is not None else f"{phase} process ended unrecorded")
            )
            self._transition(job, "failed", job.error)

    def _publish(self, job: Job) -> None:
        """Exported: rescan the store (and activate) before the job reads succeeded, so /models has it."""
        assert job.exported is not None
        model, version = job.exported["model"], job.exported["version"]
        activated, detail = False, f"exported {model}/{version}"
        if self.on_exported is not None:
            try:
                activated = self.on_exported(model, version, bool(job.spec.get("activate")))
            except Exception as error:
                log.exception("job %s: publishing %s/%s failed", job.id, model, version)
                detail += f"; not activated: {type(error).__name__}: {error}"
        with self._lock:
            job = self.get(job.id)
            job.exported = {"model": model, "version": version, "activated": activated}
            job.exit_status = 0
            self._transition(job, "succeeded", detail + (", activated" if activated else ""))

    def _spawn(self, job: Job, phase: str) -> None:
        job_dir = self.job_dir(job)
        if phase == "dataset":
            synthetic = job.spec["dataset"]["synthetic"]
            command = self._training("dataset", "--out", job.data_path, "--count", synthetic["count"])
            command += ["--seed", str(synthetic["seed"]), "--grains", *map(str, synthetic["grains"])]
            command += ["--width", str(synthetic["width"])] + (["--periodic"] if synthetic["periodic"] else [])
        elif phase == "train":
            command = self._training("train", "--data", job.data_path, "--run-dir", self.run_dir(job))
            command += ["--config", str(job_dir / "overrides.json")]
            command += [f"--preset={job.spec['preset']}"] if job.spec["preset"] else []
        else:
            command = self._training("export", "--run-dir", self.run_dir(job), "--store", self.models_dir)
            command += ["--name", job.spec["model"]]
        try:
            with open(job_dir / f"{phase}.out", "ab") as output:
                output.write(f"$ {' '.join(command)}\n".encode())
                output.flush()
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=output,  # a file, never a pipe: the child must outlive a killed service
                    stderr=subprocess.STDOUT,
                    cwd=job_dir,
                    env=self.env,
                    start_new_session=True,
                )
        except OSError as error:
            job.error = f"could not start {phase}: {error}"
            self._transition(job, "failed", job.error)
            return
        self._procs[job.id] = process
        job.phase, job.pid, job.pid_start = phase, process.pid, process_start(process.pid)
        log.info("job %s: %s started (pid %s)", job.id, phase, process.pid)
        if job.state != "running":
            self._transition(job, "running", phase)
        else:
            self._save(job)

    def _signal(self, job: Job, sig: int) -> None:
        """Signal the job's process group, only if it is still the process the job started."""
        process = self._procs.get(job.id)
        ours = process is not None and process.poll() is None
        if job.pid is not None and (ours or (process is None and alive(job.pid, job.pid_start))):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.pid, sig)

    def _training(self, *args: object) -> list[str]:
        return [sys.executable, "-m", "training", *map(str, args)]

    def _require_owner(self) -> None:
        if not self.owner:
            raise JobConflict(f"another service process runs the jobs of {self.data_dir}; send this there")

    # The record.

    def _transition(self, job: Job, state: str, detail: str | None) -> None:
        stamp = now()
        job.state = state
        job.history.append({"state": state, "time": stamp, "detail": detail})
        if state == "running" and job.started is None:
            job.started = stamp
        if state in FINISHED:
            job.finished, job.pid, job.pid_start = stamp, None, None
            log.info("job %s %s: %s", job.id, state, detail)
        self._save(job)

    def _save(self, job: Job) -> None:
        self._records().save(job)

    def _query(self, where: str, params: tuple = ()) -> list[Job]:
        return self._records().query(where, params)

    def _records(self) -> JobStore:
        assert self._store is not None, "JobManager.start() opens the job store"
        return self._store
