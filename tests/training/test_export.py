"""`python -m training export`: SavedModel versions that load and sample without training code."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ENV, run_cli, start_cli

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture(scope="module")
def loaded(tiny_store) -> dict:
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "load_export.py"), str(tiny_store / "tiny" / "1")],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in ENV.items() if k != "PYTHONPATH"},
        cwd=tiny_store,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_export_writes_version_with_card_and_pictures(tiny_store, tiny_run):
    version = tiny_store / "tiny" / "1"
    for name in ("saved_model.pb", "fp16/saved_model.pb", "model.json", "samples.png", "training.gif", "losses.png"):
        assert (version / name).is_file(), name
    card = json.loads((version / "model.json").read_text())
    for key in (
        "name",
        "version",
        "created",
        "preset",
        "config",
        "z_dim",
        "image_size",
        "steps",
        "epochs",
        "dataset",
        "tensorflow",
        "keras",
        "fidelity",
    ):
        assert key in card, key
    assert card["name"] == "tiny" and card["version"] == 1 and card["image_size"] == 64
    assert len(card["dataset"]["fingerprint"]) == 64 and card["dataset"]["count"] == 512
    assert card["fidelity"]["source"].startswith("in-training")
    assert card["checkpoint"].startswith("best")


def test_export_loads_without_training_code(loaded):
    assert loaded["training_imported"] is False
    assert loaded["dense_shape"][1:] == [64, 64, 1]
    assert -1.0 <= loaded["dense_range"][0] <= loaded["dense_range"][1] <= 1.0
    assert loaded["sample_shape"] == [100, 64, 64] and loaded["sample_dtype"] == "uint8"


def test_export_sample_is_deterministic_and_prefix_stable(loaded):
    assert loaded["repeat_identical"]
    assert loaded["distinct"] == 100  # every (seed, index) has its own latent
    # The signature's stated exactness: at most 0.1% of pixels differ, by at most one grey level for a
    # pixel head (a partition head's binary pixels can only flip, where two labels tie).
    binary = bool(loaded["partition"])
    for key in ("latents_match", "prefix", "paging", "mixed_seeds"):
        assert loaded[key]["share"] <= 0.001 and (binary or loaded[key]["max"] <= 1), key
    assert binary or loaded["mixed_seeds"]["seed7"] <= 1


def test_export_sample_rejects_out_of_range_inputs(loaded):
    assert loaded["rejected"] == {"negative_seed": True, "negative_index": True, "too_many": True}


def test_export_partition_signature_gives_the_partition_sample_draws(loaded, tiny_store):
    card = json.loads((tiny_store / "tiny" / "1" / "model.json").read_text())
    assert card["head"] == "laguerre" and "partition" in card["signatures"]
    assert loaded["signatures"] == ["partition", "sample", "serving_default"]
    partition = loaded["partition"]
    assert partition["keys"] == ["labels", "sites", "weights"] and partition["labels_dtype"] == "int32"
    assert partition["labels_shape"] == [100, 64, 64] and partition["sites_shape"] == [100, 16, 2]
    assert partition["sample_is_rule_of_labels"]  # the images are the dataset's rule applied to the labels


def test_export_fp16_variant_computes_in_float16(loaded):
    assert "float16" in loaded["layer_dtypes"]["fp16"]  # the laguerre head's label logits stay float32
    assert loaded["layer_dtypes"]["float32"] == ["float32"]
    assert loaded["sample_half_dtype"] == "uint8"
    assert loaded["dense_std_across_images"] > 0.01  # a model whose images differ, so the check means something
    assert loaded["dense_half_mad"] <= 0.02


def test_export_numbers_versions_and_uses_latest_or_step(tmp_path, tiny_run):
    store = tmp_path / "store"
    run_cli(
        "training",
        "export",
        "--run-dir",
        tiny_run,
        "--store",
        store,
        "--name",
        "m",
        "--checkpoint",
        "latest",
        check=True,
    )
    run_cli(
        "training", "export", "--run-dir", tiny_run, "--store", store, "--name", "m", "--checkpoint", "110", check=True
    )
    run_cli(
        "training", "export", "--run-dir", tiny_run, "--store", store, "--name", "m", "--checkpoint", "latest",
        "--weights", "raw", check=True,
    )  # fmt: skip
    assert sorted(p.name for p in (store / "m").iterdir()) == ["1", "2", "3"]
    cards = {v: json.loads((store / "m" / v / "model.json").read_text()) for v in ("1", "2", "3")}
    assert cards["2"]["steps"] == 110
    assert cards["1"]["weights"].startswith("ema") and cards["3"]["weights"] == "raw"
    assert cards["1"]["steps"] == cards["3"]["steps"] == 120
    # Same checkpoint, other weights: the moving average draws other images than the raw generator.
    assert (store / "m" / "1" / "samples.png").read_bytes() != (store / "m" / "3" / "samples.png").read_bytes()


@pytest.mark.parametrize(
    ("make_run", "checkpoint", "expected"),
    [
        ("empty", "best", "no checkpoints"),
        ("tiny", "123", "no checkpoint at step 123"),
        ("tiny", "newest", "expected best"),
    ],
)
def test_export_refuses_missing_checkpoints(tmp_path, tiny_run, make_run, checkpoint, expected):
    run_dir = tiny_run if make_run == "tiny" else tmp_path / "empty"
    run_dir.mkdir(exist_ok=True)
    result = run_cli(
        "training", "export", "--run-dir", run_dir, "--store", tmp_path / "s", "--name", "m", "--checkpoint", checkpoint
    )
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "s" / "m").exists() or not any(p.name.isdigit() for p in (tmp_path / "s" / "m").iterdir())


def test_export_killed_midway_leaves_no_version(tmp_path, tiny_run):
    store = tmp_path / "store"
    process = start_cli("training", "export", "--run-dir", tiny_run, "--store", store, "--name", "m")
    deadline = time.monotonic() + 120
    while not list((store / "m").glob(".tmp-export-*")) if (store / "m").exists() else True:
        assert time.monotonic() < deadline and process.poll() is None, "export never started writing"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not [p for p in (store / "m").iterdir() if p.name.isdigit()]
    # The next export still takes version 1.
    run_cli("training", "export", "--run-dir", tiny_run, "--store", store, "--name", "m", check=True)
    assert (store / "m" / "1" / "model.json").is_file()
    shutil.rmtree(store)
