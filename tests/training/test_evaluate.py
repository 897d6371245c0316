"""`python -m training evaluate` on three fake generators with known verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import run_cli
from training.voronoi import VoronoiSpec, generate

N = 256


def _h5(path: Path, images: np.ndarray) -> Path:
    with h5py.File(path, "w") as handle:
        handle.create_dataset("images", data=images)
    return path


def _fake_model(path: Path, images: np.ndarray) -> Path:
    """A SavedModel whose `sample` signature returns images[index % len(images)]."""
    import tensorflow as tf

    class Fake(tf.Module):
        def __init__(self):
            super().__init__()
            self.images = tf.constant(images)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.int64, name="seeds"),
                tf.TensorSpec([None], tf.int64, name="indices"),
            ]
        )
        def sample(self, seeds, indices):
            return {"images": tf.gather(self.images, indices % len(images))}

    module = Fake()
    tf.saved_model.save(module, str(path), signatures={"sample": module.sample})
    return path


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    spec = VoronoiSpec()
    train = generate(spec, 2 * N, np.random.default_rng(101))[0]
    held_out = generate(spec, 2 * N, np.random.default_rng(102))[0]
    fresh = generate(spec, N, np.random.default_rng(103))[0]
    return {
        "folder": folder,
        "train": _h5(folder / "train.h5", train),
        "held_out": _h5(folder / "held_out.h5", held_out),
        "honest": _fake_model(folder / "honest", fresh),
        "copier": _fake_model(folder / "copier", train[:N]),
        "collapsed": _fake_model(folder / "collapsed", np.repeat(fresh[:1], N, axis=0)),
    }


def _evaluate(sets, model: str) -> dict:
    out = sets["folder"] / f"{model}.json"
    result = run_cli(
        "training",
        "evaluate",
        "--model",
        sets[model],
        "--data",
        sets["held_out"],
        "--train-data",
        sets["train"],
        "--n",
        str(N),
        "--out",
        out,
        "--figure",
        sets["folder"] / f"{model}.png",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "s2_error" in result.stdout and "verdict" in result.stdout
    return json.loads(out.read_text())


def test_evaluate_held_out_real_images_pass_every_verdict(sets):
    report = _evaluate(sets, "honest")
    assert report["passed"], report["failed"]
    assert (sets["folder"] / "honest.png").stat().st_size > 10_000
    for name in (
        "s2_error",
        "grain_area_w1",
        "boundary_fraction_diff",
        "grain_count_w1",
        "solidity_diff",
        "defect_free_shortfall",
        "diversity_loss",
        "memorisation",
    ):
        assert name in report["distances"], name


def test_evaluate_copies_of_training_images_fail_memorisation(sets):
    report = _evaluate(sets, "copier")
    assert "memorisation" in report["failed"]


def test_evaluate_one_repeated_image_fails_diversity(sets):
    report = _evaluate(sets, "collapsed")
    assert "diversity_loss" in report["failed"]


def test_evaluate_refuses_a_directory_that_is_not_a_model(tmp_path, sets):
    result = run_cli("training", "evaluate", "--model", tmp_path, "--data", sets["held_out"], "--n", "64")
    assert result.returncode == 2 and "saved_model.pb" in result.stderr
