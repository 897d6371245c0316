"""Multi-worker training for real: two `python -m training train` workers on 127.0.0.1 under
MultiWorkerMirroredStrategy, with TF_CONFIG from `python -m training tf-config` (what each pod of the
Kubernetes training job runs), against one process with the same global batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ENV, ROOT, free_port, run_cli
from training import checkpoint
from training.cluster import indexed_job_hosts, is_chief, tf_config

STEPS = 4
# Same weights, same global batch: only the order of the all-reduce sums differs, so the weights drift
# by float32 rounding, which Adam magnifies where a gradient is near zero. Stated tolerance: the
# largest difference of any weight is under 5% of the largest move of the last two steps (measured:
# critic 2.2e-5 against 1.4e-3, 1.6%; generator 8e-7). Workers that did not share their gradients
# would each take half-batch steps and differ by about the move itself.
TOLERANCE = 0.05


def _train_args(data: Path, run_dir: Path) -> list[str]:
    settings = [f"total_steps={STEPS}", "seed=5", "threads=1", "checkpoint_interval=2", "frame_interval=1000"]
    return ["training", "train", "--data", str(data), "--run-dir", str(run_dir), "--preset", "tiny"] + [
        arg for setting in settings for arg in ("--set", setting)
    ]


def _worker(args: list[str], config: str) -> subprocess.Popen:
    env = {**ENV, "TF_CONFIG": config, "MICROGAN_TRAIN_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_zip) -> dict:
    root = tmp_path_factory.mktemp("multiworker")
    hosts = ",".join(f"127.0.0.1:{free_port()}" for _ in range(2))
    configs = [
        run_cli("training", "tf-config", "--workers", "2", "--hosts", hosts, "--index", str(i), check=True).stdout
        for i in range(2)
    ]
    workers = [_worker(_train_args(synthetic_zip, root / "cluster"), config.strip()) for config in configs]
    outputs = []
    for worker in workers:
        try:
            outputs.append(worker.communicate(timeout=240)[0])
        finally:
            worker.kill()
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
    run_cli(*_train_args(synthetic_zip, root / "single"), check=True)
    return {"root": root, "configs": configs, "outputs": outputs, "pids": [w.pid for w in workers]}


def _checkpoint(run_dir: Path, step: int) -> dict:
    return checkpoint.load(checkpoint.checkpoint_dir(run_dir) / f"ckpt-{step:07d}.npz")


def test_multiworker_training_equals_one_process_with_the_same_global_batch(runs):
    cluster, single = runs["root"] / "cluster", runs["root"] / "single"
    assert json.loads((cluster / "config.json").read_text())["replicas"] == 2
    assert json.loads((single / "config.json").read_text())["replicas"] == 1
    two, one, before = _checkpoint(cluster, STEPS), _checkpoint(single, STEPS), _checkpoint(single, STEPS - 2)
    for group in ("generator", "critic", "generator_ema"):
        moved = max(float(np.max(np.abs(a - b))) for a, b in zip(one[group], before[group]))
        apart = max(float(np.max(np.abs(a - b))) for a, b in zip(one[group], two[group]))
        assert moved > 1e-4, f"{group}: the steps did not move the weights"
        assert apart < TOLERANCE * moved, f"{group}: workers differ by {apart}, training moved it {moved}"
    losses = [
        [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()] for run in (cluster, single)
    ]
    last = [next(r for r in reversed(lines) if "d_loss" in r) for lines in losses]
    assert last[0]["d_loss"] == pytest.approx(last[1]["d_loss"], rel=1e-3, abs=1e-4)


def test_multiworker_only_the_chief_writes_the_run_directory(runs):
    cluster = runs["root"] / "cluster"
    status = json.loads((cluster / "status.json").read_text())
    assert status["state"] == "succeeded" and status["pid"] == runs["pids"][0]
    log = (cluster / "train.log").read_text()
    assert log.count("done:") == 1 and log.count("replica(s)") == 1, log
    assert [step for step, _ in checkpoint.list_checkpoints(cluster)] == [2, STEPS]
    # The second worker trained in a scratch directory, removed when it exited.
    scratch = Path(runs["outputs"][1].rsplit("artifacts in ", 1)[1].split()[0])
    assert scratch != cluster and not scratch.exists()


def test_tf_config_names_every_worker_and_this_task():
    config = json.loads(
        run_cli(
            "training", "tf-config", "--workers", "3", "--job", "j", "--service", "s", "--index", "2", check=True
        ).stdout
    )
    assert config == json.loads(tf_config(indexed_job_hosts("j", "s", 3, 2222), 2))
    assert config["cluster"]["worker"][0] == "j-0.s:2222" and config["task"] == {"type": "worker", "index": 2}
    assert is_chief({"TF_CONFIG": tf_config(["a:1", "b:1"], 0)})
    assert not is_chief({"TF_CONFIG": tf_config(["a:1", "b:1"], 1)})
    assert is_chief({})


@pytest.mark.parametrize(
    "args, message",
    [
        (["--workers", "2", "--job", "j", "--service", "s", "--index", "2"], "outside 0..1"),
        (["--workers", "2", "--job", "j", "--service", "s"], "JOB_COMPLETION_INDEX"),
        (["--workers", "0", "--job", "j", "--service", "s", "--index", "0"], "--workers"),
        (["--workers", "2", "--hosts", "a:1", "--index", "0"], "--hosts lists 1"),
        (["--workers", "2", "--index", "0"], "--job and --service"),
    ],
)
def test_tf_config_bad_arguments_exit_2_naming_the_problem(args, message):
    result = run_cli("training", "tf-config", *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
