"""`python -m training train` through the CLI: artifacts, resume after kills, signals, bad config."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import TINY_STEPS, run_cli, start_cli
from training import checkpoint
from training.monitor import fidelity_history

PROGRESS_KEYS = {
    "time",
    "step",
    "total_steps",
    "epoch",
    "epochs",
    "d_loss",
    "g_loss",
    "wasserstein",
    "gp",
    "g_lr",
    "d_lr",
    "images_per_s",
    "eta_s",
}


def _progress(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]


def _wait_for(predicate, process, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            raise AssertionError(f"trainer exited early ({process.returncode}): {process.stdout.read()}")
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the trainer")


def test_train_tiny_run_writes_every_artifact(tiny_run):
    for name in (
        "config.json",
        "progress.jsonl",
        "losses.csv",
        "train.log",
        "status.json",
        "training.gif",
        "losses.png",
    ):
        assert (tiny_run / name).is_file(), name
    assert list((tiny_run / "tb").glob("events.out.tfevents.*"))
    assert (tiny_run / "frames" / "reals.png").is_file()
    frames = sorted((tiny_run / "frames").glob("step_*.png"))
    assert frames[0].name == "step_0000000.png" and frames[-1].name == f"step_{TINY_STEPS:07d}.png"
    assert Image.open(frames[-1]).size == Image.open(frames[0]).size

    status = json.loads((tiny_run / "status.json").read_text())
    assert status["state"] == "succeeded" and status["exit_status"] == 0 and status["step"] == TINY_STEPS
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["config"]["preset"] == "tiny" and config["total_steps"] == TINY_STEPS
    assert len(config["data"]["fingerprint"]) == 64

    lines = _progress(tiny_run)
    steps = [line for line in lines if "d_loss" in line]
    assert steps and all(PROGRESS_KEYS <= line.keys() for line in steps)
    assert steps[-1]["step"] == TINY_STEPS and steps[-1]["eta_s"] == 0
    fidelity = [line for line in lines if "fidelity" in line]
    assert [line["step"] for line in fidelity] == [60, 120]
    assert (tiny_run / "checkpoints" / "best.npz").is_file()
    assert [step for step, _ in fidelity_history(tiny_run)] == [60, 120]
    state = checkpoint.latest(tiny_run)
    assert [a.shape for a in state["generator_ema"]] == [a.shape for a in state["generator"]]
    assert any(not np.array_equal(a, b) for a, b in zip(state["generator_ema"], state["generator"]))
    assert Image.open(tiny_run / "losses.png").size == (640, 720)  # three panels: losses, W and GP, fidelity
    with open(tiny_run / "losses.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert int(rows[-1]["step"]) == TINY_STEPS
    assert "resumed" not in (tiny_run / "train.log").read_text()


def test_train_dry_run_prints_resolved_config(tmp_path):
    result = run_cli(
        "training",
        "train",
        "--data",
        "x.zip",
        "--run-dir",
        tmp_path / "r",
        "--preset",
        "tiny",
        "--set",
        "epochs=7",
        "--dry-run",
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["config"]["epochs"] == 7 and printed["config"]["preset"] == "tiny"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("bogus=1", "bogus"),
        ("epochs=-3", "epochs"),
        ("precision=half", "precision"),
        ("g_filters=[8,8]", "g_filters"),
        ("ema_decay=1", "ema_decay"),
    ],
)
def test_train_bad_config_exits_2_naming_the_key(tmp_path, synthetic_zip, setting, named):
    result = run_cli("training", "train", "--data", synthetic_zip, "--run-dir", tmp_path / "r", "--set", setting)
    assert result.returncode == 2
    assert named in result.stderr and "Traceback" not in result.stderr


def test_train_bad_data_exits_2(tmp_path):
    (tmp_path / "notes.txt").write_text("not a dataset")
    result = run_cli(
        "training", "train", "--data", tmp_path / "notes.txt", "--run-dir", tmp_path / "r", "--preset", "tiny"
    )
    assert result.returncode == 2 and "notes.txt" in result.stderr and "Traceback" not in result.stderr


def test_train_resume_refuses_architecture_change(tmp_path, tiny_run):
    run_dir = tmp_path / "copy"
    shutil.copytree(tiny_run, run_dir)
    result = run_cli("training", "train", "--run-dir", run_dir, "--set", "g_base=32")
    assert result.returncode == 2 and "g_base" in result.stderr
    # Extending the run is allowed (checked without training: --dry-run).
    result = run_cli("training", "train", "--run-dir", run_dir, "--set", "total_steps=200", "--dry-run")
    assert result.returncode == 0 and json.loads(result.stdout)["resume_step"] == TINY_STEPS


def _train_args(data, run_dir, steps):
    return (
        "training",
        "train",
        "--data",
        data,
        "--run-dir",
        run_dir,
        "--preset",
        "tiny",
        "--set",
        f"total_steps={steps}",
        "--set",
        "checkpoint_interval=10",
        "--set",
        "frame_interval=10",
        "--set",
        "deterministic=true",
        "--set",
        "seed=9",
        "--set",
        "log_interval=1",
    )


def test_train_resume_after_sigkill_matches_uninterrupted_run(tmp_path, synthetic_zip):
    steps = 60
    reference = tmp_path / "reference"
    run_cli(*_train_args(synthetic_zip, reference, steps), check=True)

    killed = tmp_path / "killed"
    process = start_cli(*_train_args(synthetic_zip, killed, steps))
    _wait_for(lambda: any(s >= 20 for s, _ in checkpoint.list_checkpoints(killed)), process)
    process.kill()
    process.wait()
    last = checkpoint.latest(killed)
    assert last is not None and 20 <= last["step"] < steps

    resumed = run_cli(*_train_args(synthetic_zip, killed, steps), check=True)
    assert f"resumed from ckpt-{last['step']:07d}.npz at step {last['step']}" in resumed.stdout

    # Same seed, deterministic ops: weights, optimizer slots and the last frame are identical.
    final_ref = checkpoint.latest(reference)
    final_killed = checkpoint.latest(killed)
    assert final_ref["step"] == final_killed["step"] == steps
    for group in checkpoint.GROUPS:
        for a, b in zip(final_ref[group], final_killed[group]):
            np.testing.assert_array_equal(a, b, err_msg=group)
    frame = f"frames/step_{steps:07d}.png"
    assert np.array_equal(np.asarray(Image.open(reference / frame)), np.asarray(Image.open(killed / frame)))
    assert json.loads((killed / "status.json").read_text())["state"] == "succeeded"


def test_train_sigterm_checkpoints_and_exits_143(tmp_path, synthetic_zip):
    run_dir = tmp_path / "run"
    process = start_cli(*_train_args(synthetic_zip, run_dir, 100000))
    _wait_for(
        lambda: (run_dir / "progress.jsonl").exists() and '"d_loss"' in (run_dir / "progress.jsonl").read_text(),
        process,
    )
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted" and status["exit_status"] == 143
    last = checkpoint.latest(run_dir)
    assert last["step"] == status["step"] > 0
    # training.gif is written after every frame, so an unfinished run has one made from its frames so far
    frames = sorted((run_dir / "frames").glob("step_*.png"))
    gif = run_dir / "training.gif"
    assert frames and gif.stat().st_mtime_ns >= max(frame.stat().st_mtime_ns for frame in frames)
    with Image.open(gif) as animation:
        assert 1 <= animation.n_frames <= len(frames)  # identical neighbours may merge


def test_train_resume_keeps_the_runs_load_options_and_refuses_other_data(tmp_path, synthetic_zip):
    """A run started with --invert resumes on the same (inverted) data; other data is refused by fingerprint."""
    import h5py

    from training.loading import load

    dark = tmp_path / "dark.h5"  # boundaries dark on light grains: needs --invert
    images = load(synthetic_zip).images[..., 0]
    with h5py.File(dark, "w") as file:
        file.create_dataset("images", data=np.where(images > 0, 0, 255).astype(np.uint8))
    run_dir = tmp_path / "run"
    first = ("--set", "total_steps=6", "--set", "checkpoint_interval=6", "--set", "log_interval=2")
    run_cli(
        "training", "train", "--data", dark, "--invert", "--run-dir", run_dir, "--preset", "tiny", *first, check=True
    )
    started = json.loads((run_dir / "config.json").read_text())["data"]
    assert started["options"]["invert"] is True

    run_cli("training", "train", "--run-dir", run_dir, "--set", "total_steps=8", check=True)
    resumed = json.loads((run_dir / "config.json").read_text())["data"]
    assert resumed["options"]["invert"] is True and resumed["fingerprint"] == started["fingerprint"]

    # The same file without --invert is other data: refused, naming both fingerprints, nothing changed.
    result = run_cli("training", "train", "--data", dark, "--run-dir", run_dir, "--set", "total_steps=10")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert started["fingerprint"] in result.stderr and "differs from the one the run started on" in result.stderr
    assert json.loads((run_dir / "config.json").read_text())["data"] == resumed
    assert checkpoint.latest(run_dir)["step"] == 8


@pytest.mark.parametrize("where", ["--set", "--config"])
def test_train_preset_is_not_a_config_key(tmp_path, where):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"preset": "tiny"}))
    value = ["--set", "preset=tiny"] if where == "--set" else ["--config", config]
    result = run_cli("training", "train", "--data", "x.zip", "--run-dir", tmp_path / "r", *value, "--dry-run")
    assert result.returncode == 2 and "config key 'preset'" in result.stderr and "--preset" in result.stderr


def test_train_epoch_is_counted_one_way_in_checkpoints_and_progress(tiny_run):
    logged = {line["step"]: line["epoch"] for line in _progress(tiny_run) if "epoch" in line}
    kept = checkpoint.list_checkpoints(tiny_run)
    assert kept
    for step, path in kept:
        assert checkpoint.load(path)["epoch"] == logged[step], step


def test_pixel_preset_is_the_v1_arrangement():
    """Reproducing the shipped v1 needs no overrides: its card's architecture and schedule are the preset's."""
    from training.config import ARCHITECTURE_KEYS, resolve

    card = json.loads((Path(__file__).parents[2] / "models_store/voronoi64/1/model.json").read_text())["config"]
    cfg = resolve("pixel")
    keys = [k for k in ARCHITECTURE_KEYS if k in card] + ["total_steps", "g_learning_rate", "d_learning_rate"]
    expected = {k: tuple(card[k]) if isinstance(card[k], list) else card[k] for k in keys}
    assert {k: getattr(cfg, k) for k in keys} == expected
    assert cfg.g_head == "image" and cfg.ema_decay == card["ema_decay"]
