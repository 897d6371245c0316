"""The job supervisor: a thread that runs queued jobs' phases as child processes and settles their ends.

    import threading
    from pathlib import Path
    from service.jobstore import JobStore
    from service.supervisor import Supervisor
    supervisor = Supervisor(Path("data/jobs"), Path("models_store"), threading.RLock())
    supervisor.start(JobStore(Path("data/jobs.db")))   # re-attaches to live processes, settles the others
    supervisor.wake()                                  # look at the queue now (after a submit or resume)
    supervisor.stop()                                  # SIGTERM the running phases, wait, jobs interrupted

A job lives in `<root>/<id>/` and runs these child processes in turn, each in its own session (so its
process group can be signalled, and it outlives a killed service), output in `<phase>.out`:

  dataset  `python -m training dataset --out synthetic.zip ...`   (synthetic datasets, once)
  train    `python -m training train --data ... --run-dir run ...` (the same command resumes run/)
  export   `python -m training export --run-dir run --store <models_dir> --name <model>`

then `publish`: the store is rescanned (and the version activated) before the job reads succeeded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from service.jobstore import Job, JobStore, now
from service.outcome import Ending, outcome
from service.runs import alive, exported_version, process_start, read_status, tail_lines
from service.training_cli import child_env, command, error_reason

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(
        self,
        root: Path,
        models_dir: Path,
        lock: threading.RLock,
        max_concurrent: int = 1,
        stop_timeout: float = 60.0,
        on_exported: Callable[[str, int, bool], bool] | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.root = root
        self.models_dir = models_dir
        self.max_concurrent = max_concurrent
        self.stop_timeout = stop_timeout
        self.on_exported = on_exported  # rescan the store (and activate); returns whether it was activated
        self.poll_s = poll_s
        self._lock = lock  # the job manager's: guards the records and _procs
        self._store: JobStore | None = None  # given by start()
        self._procs: dict[str, subprocess.Popen] = {}  # the children this process started
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def job_dir(self, job: Job) -> Path:
        return self.root / job.id

    def run_dir(self, job: Job) -> Path:
        return self.root / job.id / "run"

    # Lifecycle.

    def start(self, store: JobStore) -> None:
        """Settle the jobs recorded as running (re-attach or end them), then supervise."""
        self._store = store
        with self._lock:
            self._recover()
        self._thread = threading.Thread(target=self._supervise, name="job-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """SIGTERM the running jobs' processes, wait for them (then SIGKILL), mark the jobs interrupted."""
        self._stopping.set()
        self._wake.set()
        if self._thread is None:
            return
        self._thread.join()
        with self._lock:
            pending = self._records().query("state = 'running'")
            for job in pending:
                log.info("stopping job %s (%s, pid %s)", job.id, job.phase, job.pid)
                self.signal(job, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while pending:
            if time.monotonic() > deadline:
                for job in pending:
                    log.warning("job %s: %s did not exit after SIGTERM; killing it", job.id, job.phase)
                    self.signal(job, signal.SIGKILL)
                deadline = time.monotonic() + 10
            time.sleep(0.1)
            with self._lock:
                pending = [job for job in pending if not self._check(job)]
        self._publish_exported()

    def wake(self) -> None:
        """Look at the queue and the running jobs now rather than at the next poll."""
        self._wake.set()

    def signal(self, job: Job, sig: int) -> None:
        """Signal the job's process group, only if it is still the process the job started."""
        process = self._procs.get(job.id)
        ours = process is not None and process.poll() is None
        if job.pid is not None and (ours or (process is None and alive(job.pid, job.pid_start))):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.pid, sig)

    # The loop.

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                with self._lock:
                    for job in self._records().query("state = 'running'"):
                        self._check(job)
                self._publish_exported()
                self._start_queued()
            except Exception:  # a bug here must not end supervision of the other jobs
                log.exception("job supervisor")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _check(self, job: Job) -> bool:
        """Handle the end of the job's current process, if it has ended; True when it has."""
        latest = self._records().get(job.id)  # a cancel may have flagged it, a delete removed it
        if latest is None or latest.state != "running" or latest.phase == "publish":
            return True
        process = self._procs.get(latest.id)
        if process is not None:
            code = process.poll()
            if code is None:
                return False
            del self._procs[latest.id]
        elif alive(latest.pid, latest.pid_start):
            return False  # re-attached after a restart: not our child, so no exit status until it ends
        else:
            code = None
        self._ended(latest, code)
        return True

    def _start_queued(self) -> None:
        with self._lock:
            free = self.max_concurrent - len(self._records().query("state = 'running'"))
            for job in self._records().query("state = 'queued' ORDER BY queued_at")[: max(free, 0)]:
                if self._stopping.is_set():
                    return
                self._spawn(job, self._next_phase(job))

    def _recover(self) -> None:
        """At start: re-attach to jobs whose process still lives; settle the others from their files."""
        for job in self._records().query("state = 'running'"):
            if job.phase == "publish":
                continue  # exported before the restart: the loop publishes it
            if alive(job.pid, job.pid_start):
                log.info("job %s: re-attached to its %s process %s", job.id, job.phase, job.pid)
                job.history.append({"state": "running", "time": now(), "detail": f"re-attached to pid {job.pid}"})
                self._records().save(job)
            else:
                self._ended(job, None, restarted=True)

    def _next_phase(self, job: Job) -> str:
        if "synthetic" in job.spec["dataset"] and not Path(job.data_path).exists():
            return "dataset"
        if read_status(self.run_dir(job)).get("state") == "succeeded":
            return "export"  # resumed after the training had finished
        return "train"

    # A phase's end.

    def _ended(self, job: Job, code: int | None, restarted: bool = False) -> None:
        """The job's current process ended with `code` (None: unknown, not our child): next phase or end."""
        end, exported = self._evidence(job, code, restarted)
        state, detail = outcome(end)
        job.exit_status = end.code
        if (state, detail) == ("running", "publish"):
            assert exported is not None
            # Published by the loop outside the lock: a rescan loads the model, which takes seconds.
            job.phase, job.pid, job.pid_start = "publish", None, None
            job.exported = {"model": exported[0], "version": exported[1], "activated": False}
            self._records().save(job)
        elif state == "running":
            self._spawn(job, detail)
        else:
            job.error = detail if state == "failed" else None
            self._records().transition(job, state, detail)

    def _evidence(self, job: Job, code: int | None, restarted: bool) -> tuple[Ending, tuple[str, int] | None]:
        """What the ended process left behind: its exit status, its own status.json, its output; and the
        (model, version) an export printed."""
        assert job.phase is not None, "a running job has a phase"
        phase, output = job.phase, self.job_dir(job) / f"{job.phase}.out"
        status = read_status(self.run_dir(job)) if phase == "train" else {}
        own = status if status.get("pid") == job.pid else {}  # written by this very process, else no evidence
        code = own.get("exit_status") if code is None else code
        exported = exported_version(output) if phase == "export" and code in (0, None) else None
        produced = {
            "dataset": code == 0 or (code is None and Path(job.data_path).exists()),
            "train": code == 0 or own.get("state") == "succeeded",
            "export": exported is not None,
        }[phase]
        end = Ending(
            phase,
            code,
            produced,
            run_state=own.get("state"),
            reason=own.get("error") or error_reason(tail_lines(output, count=50)),
            cancel_requested=job.cancel_requested,
            stopping=self._stopping.is_set(),
            restarted=restarted,
        )
        return end, exported

    def _publish_exported(self) -> None:
        """Exported: rescan the store (and activate) before the job reads succeeded, so /models has it."""
        with self._lock:
            publishing = [job for job in self._records().query("state = 'running'") if job.phase == "publish"]
        for job in publishing:
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
                latest = self._records().get(job.id)
                assert latest is not None, "a running job cannot be deleted"
                latest.exported = {"model": model, "version": version, "activated": activated}
                latest.exit_status = 0
                self._records().transition(latest, "succeeded", detail + (", activated" if activated else ""))

    # A phase's start.

    def _spawn(self, job: Job, phase: str) -> None:
        job_dir, argv = self.job_dir(job), self._command(job, phase)
        try:
            with open(job_dir / f"{phase}.out", "ab") as output:
                output.write(f"$ {' '.join(argv)}\n".encode())
                output.flush()
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=output,  # a file, never a pipe: the child must outlive a killed service
                    stderr=subprocess.STDOUT,
                    cwd=job_dir,
                    env=child_env(),
                    start_new_session=True,
                )
        except OSError as error:
            job.error = f"could not start {phase}: {error}"
            self._records().transition(job, "failed", job.error)
            return
        self._procs[job.id] = process
        job.phase, job.pid, job.pid_start = phase, process.pid, process_start(process.pid)
        log.info("job %s: %s started (pid %s)", job.id, phase, process.pid)
        if job.state != "running":
            self._records().transition(job, "running", phase)
        else:
            self._records().save(job)

    def _command(self, job: Job, phase: str) -> list[str]:
        if phase == "dataset":
            synthetic = job.spec["dataset"]["synthetic"]
            argv = command("dataset", "--out", job.data_path, "--count", synthetic["count"])
            argv += ["--seed", str(synthetic["seed"]), "--grains", *map(str, synthetic["grains"])]
            return argv + ["--width", str(synthetic["width"])] + (["--periodic"] if synthetic["periodic"] else [])
        if phase == "train":
            argv = command("train", "--data", job.data_path, "--run-dir", self.run_dir(job))
            argv += ["--config", str(self.job_dir(job) / "overrides.json")]
            return argv + ([f"--preset={job.spec['preset']}"] if job.spec["preset"] else [])
        argv = command("export", "--run-dir", self.run_dir(job), "--store", self.models_dir)
        return argv + ["--name", job.spec["model"]]

    def _records(self) -> JobStore:
        assert self._store is not None, "Supervisor.start() is given the job store"
        return self._store
