"""Multi-worker training: TF_CONFIG for each worker, and which worker writes the run directory.

    >>> import json
    >>> from training.cluster import tf_config, indexed_job_hosts
    >>> hosts = indexed_job_hosts("microgan-train", "microgan-train", workers=2, port=2222)
    >>> hosts
    ['microgan-train-0.microgan-train:2222', 'microgan-train-1.microgan-train:2222']
    >>> json.loads(tf_config(hosts, 1))["task"]        # TF_CONFIG also lists every worker under "cluster"
    {'type': 'worker', 'index': 1}

A Kubernetes Indexed Job names its pods `<job>-<index>`; with `subdomain: <service>` (a headless
Service) each pod is reachable as `<job>-<index>.<service>`. Each pod builds its TF_CONFIG from its
completion index, `python -m training tf-config --workers N --job J --service S` (index from
JOB_COMPLETION_INDEX), and `python -m training train` sees TF_CONFIG and trains under
MultiWorkerMirroredStrategy. Worker 0 is the chief: the only one that writes checkpoints and the run
directory; the others write theirs to a temporary directory that is removed when they exit.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

from training.errors import UserError


def indexed_job_hosts(job: str, service: str, workers: int, port: int) -> list[str]:
    """host:port of each pod of an Indexed Job whose pods have `subdomain: service`."""
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if not 1 <= port <= 65535:
        raise UserError(f"--port must be 1..65535, got {port}")
    return [f"{job}-{index}.{service}:{port}" for index in range(workers)]


def tf_config(hosts: list[str], index: int) -> str:
    """The TF_CONFIG of worker `index` of a cluster of `hosts` (worker 0 is the chief)."""
    if not 0 <= index < len(hosts):
        raise UserError(f"worker index {index} is outside 0..{len(hosts) - 1} ({len(hosts)} workers)")
    return json.dumps({"cluster": {"worker": list(hosts)}, "task": {"type": "worker", "index": index}})


def completion_index(value: str | None) -> int:
    """The index given, else $JOB_COMPLETION_INDEX (set by Kubernetes in each pod of an Indexed Job)."""
    value = value if value is not None else os.environ.get("JOB_COMPLETION_INDEX")
    if value is None:
        raise UserError("--index is required outside a Kubernetes Indexed Job (JOB_COMPLETION_INDEX is not set)")
    try:
        return int(value)
    except ValueError:
        raise UserError(f"worker index must be an integer, got {value!r}") from None


def is_chief(environ: dict | None = None) -> bool:
    """True unless TF_CONFIG makes this process a worker other than the chief (worker 0 without one)."""
    raw = (environ if environ is not None else os.environ).get("TF_CONFIG")
    if not raw:
        return True
    try:
        config = json.loads(raw)
        task, cluster = config.get("task", {}), config.get("cluster", {})
        kind, index = task.get("type"), int(task.get("index", 0))
    except (ValueError, AttributeError, TypeError):
        raise UserError(f"TF_CONFIG is not valid JSON with a task type and index: {raw[:200]}") from None
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in cluster


def writable_run_dir(run_dir: Path) -> Path:
    """Where this process writes its run: the run directory for the chief, a temporary one otherwise.

    Every worker trains (each holds the same mirrored weights), but two writers of one directory
    would interleave checkpoints and logs, so only the chief keeps the record.
    """
    if is_chief():
        return run_dir
    scratch = Path(tempfile.mkdtemp(prefix="microgan-worker-"))
    atexit.register(shutil.rmtree, scratch, True)
    return scratch
