"""Generation conditioned on grains per image: counts from the data, the conditional networks, the run,
the export's signatures and card, and evaluation of how well images obey the count."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from microstructure.stats import grain_counts, segment
from tests.conftest import run_cli
from training.conditions import cache_path, grain_record
from training.conditions import grain_counts as dataset_counts
from training.config import resolve
from training.errors import UserError
from training.heads import partition_outputs
from training.loading import LoadOptions, load
from training.networks import build_critic, build_generator, set_grain_histogram, unconditional


def test_grain_counts_match_the_segmentation(real_images):
    assert np.array_equal(grain_counts(real_images), segment(real_images).reshape(len(real_images), -1).max(axis=1))


def test_dataset_counts_are_computed_once_and_cached_beside_the_dataset(tmp_path, synthetic_zip):
    path = tmp_path / "voronoi.zip"
    shutil.copyfile(synthetic_zip, path)
    data = load(path)
    counts = dataset_counts(data, path)
    cached = cache_path(path, data.fingerprint)
    assert cached.parent == tmp_path and np.array_equal(np.load(cached), counts)
    assert counts.min() >= 1 and len(counts) == len(data.images)
    np.save(cached, np.full_like(counts, 3))  # the cache is what a second call reads
    assert (dataset_counts(data, path) == 3).all()
    inverted = load(path, LoadOptions(invert=True))
    assert cache_path(path, inverted.fingerprint) != cached  # other options, other counts


def test_conditional_generator_draws_exactly_the_requested_number_of_sites():
    cfg = resolve("tiny", overrides=["condition=grains"])
    generator = build_generator(cfg)
    z = tf.random.stateless_normal([24, cfg.z_noise_dim], seed=[4, 2])
    grains = tf.constant(np.repeat([3, 7, 12], 8), tf.int32)
    labels = partition_outputs(generator)({"z": z, "grains": grains})["logits"].numpy().argmax(axis=-1)
    owners = [len(np.unique(image)) for image in labels]
    # Only the first `count` sites own pixels; all sites lie inside the image (no grain leaves the view).
    assert all(o <= c for o, c in zip(owners, grains.numpy())) and all(labels[i].max() < grains[i] for i in range(24))
    sites = partition_outputs(generator)({"z": z, "grains": grains})["sites"].numpy()
    assert sites.min() >= 0.0 and sites.max() <= 1.0


def test_unconditional_sampling_draws_counts_from_the_training_histogram():
    cfg = resolve("tiny", overrides=["condition=grains"])
    generator = build_generator(cfg)
    set_grain_histogram(generator, grain_record(np.array([5] * 30 + [9] * 10)))
    z = tf.random.stateless_normal([4000, cfg.z_noise_dim], seed=[1, 9])
    counts = generator.get_layer("grain_prior")([z, tf.zeros([4000], tf.int32)]).numpy()
    assert set(np.unique(counts)) == {5, 9} and abs((counts == 5).mean() - 0.75) < 0.03
    assert unconditional(generator)(z[:4]).shape == (4, 64, 64, 1)


def test_conditional_critic_judges_image_and_count_pairs():
    critic = build_critic(resolve("tiny", overrides=["condition=grains"]))
    images = tf.random.stateless_uniform([4, 64, 64, 1], seed=[1, 1], minval=-1, maxval=1)
    a = critic({"images": images, "grains": tf.constant([5, 5, 5, 5])}).numpy()
    b = critic({"images": images, "grains": tf.constant([9, 9, 9, 9])}).numpy()
    assert not np.allclose(a, b)  # the count changes the score


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["condition=grains", "d_pack=2"], "d_pack"),
        (["condition=sizes"], "condition"),
    ],
)
def test_bad_conditional_configs_are_refused(overrides, message):
    with pytest.raises(UserError, match=message):
        resolve("tiny", overrides=overrides)


def test_a_run_records_the_data_histogram_and_refuses_too_few_sites(tmp_path, synthetic_zip, tiny_grains_run):
    meta = json.loads((tiny_grains_run / "config.json").read_text())
    record = meta["data"]["grains"]
    counts = grain_counts(load(synthetic_zip).images)
    assert record == grain_record(np.maximum(counts, 1))
    assert meta["config"]["condition"] == "grains"
    result = run_cli(
        "training", "train", "--data", synthetic_zip, "--run-dir", tmp_path / "few", "--preset", "tiny",
        "--set", "condition=grains", "--set", "g_sites=4",
    )  # fmt: skip
    assert result.returncode == 2 and "g_sites" in result.stderr and str(record["max"]) in result.stderr
    assert "Traceback" not in result.stderr


def test_a_conditional_run_resumes(tmp_path, tiny_grains_run):
    run_dir = tmp_path / "resumed"
    shutil.copytree(tiny_grains_run, run_dir)
    result = run_cli("training", "train", "--run-dir", run_dir, "--set", "total_steps=70", check=True)
    assert "resumed from ckpt-0000060" in result.stdout
    lines = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 70 or any(line.get("step") == 70 for line in lines)


def test_export_keeps_sample_and_adds_a_signature_that_takes_the_count(tiny_grains_store, tiny_grains_run):
    version = tiny_grains_store / "grains" / "1"
    card = json.loads((version / "model.json").read_text())
    record = json.loads((tiny_grains_run / "config.json").read_text())["data"]["grains"]
    assert card["condition"] == {"name": "grains", **record}
    assert {"sample", "sample_grains", "partition", "partition_grains"} <= set(card["signatures"])
    # grains.png: images 0..3 of seed 0 (rows) at every count of the range (columns), 2x scaled.
    columns = record["max"] - record["min"] + 1
    assert Image.open(version / "grains.png").size == (2 * (columns * 66 + 2), 2 * (4 * 66 + 2))
    model = tf.saved_model.load(str(version))
    seeds, indices = tf.fill([8], tf.constant(7, tf.int64)), tf.range(8, dtype=tf.int64)
    sample = model.signatures["sample"](seeds=seeds, indices=indices)["images"].numpy()
    drawn = model.signatures["sample_grains"](seeds=seeds, indices=indices, grains=tf.zeros([8], tf.int32))
    assert np.array_equal(sample, drawn["images"].numpy())  # 0 = the count `sample` draws: the same bytes
    asked = model.signatures["sample_grains"](seeds=seeds, indices=indices, grains=tf.fill([8], 6))["images"]
    again = model.signatures["sample_grains"](seeds=seeds, indices=indices, grains=tf.fill([8], 6))["images"]
    assert np.array_equal(asked.numpy(), again.numpy()) and not np.array_equal(asked.numpy(), sample)
    parts = model.signatures["partition_grains"](seeds=seeds, indices=indices, grains=tf.fill([8], 6))
    assert (parts["labels"].numpy().max(axis=(1, 2)) < 6).all()  # only the first 6 sites own pixels
    with pytest.raises(tf.errors.InvalidArgumentError, match="grains above"):
        model.signatures["sample_grains"](seeds=seeds, indices=indices, grains=tf.fill([8], 999))


def test_evaluate_reports_how_well_images_obey_the_count(tmp_path, tiny_grains_store, synthetic_zip):
    out = tmp_path / "report.json"
    result = run_cli(
        "training", "evaluate", "--model", tiny_grains_store / "grains" / "1", "--data", synthetic_zip,
        "--n", "64", "--out", out, check=True,
    )  # fmt: skip
    assert "grains asked" in result.stdout and "within 1" in result.stdout
    report = json.loads(out.read_text())
    conditional = report["conditional"]
    record = json.loads((tiny_grains_store / "grains" / "1" / "model.json").read_text())["condition"]
    assert list(conditional["per_count"]) == [str(c) for c in range(record["min"], record["max"] + 1)]
    rows = conditional["per_count"].values()
    assert conditional["exact"] == pytest.approx(np.mean([r["exact"] for r in rows]))
    assert all(0 <= r["exact"] <= r["within_1"] <= 1 for r in rows)
    assert report["summary"]["grains_exact"] == conditional["exact"]


def test_cache_is_beside_a_folder_dataset_too(tmp_path):
    assert cache_path(Path("/data/set"), "ab" * 32) == Path("/data/set.grains-abababababababab.npy")


def test_rank_shows_how_well_each_checkpoint_obeys_the_count(tmp_path, tiny_grains_run, synthetic_zip):
    out = tmp_path / "rank.json"
    result = run_cli(
        "training", "rank", "--run-dir", tiny_grains_run, "--data", synthetic_zip, "--n", "32",
        "--weights", "ema", "--out", out, check=True,
    )  # fmt: skip
    assert "exact" in result.stdout.splitlines()[0] + result.stdout and "within 1" in result.stdout
    rows = json.loads(out.read_text())["rows"]
    assert rows and all(0 <= r["figures"]["grains_exact"] <= r["figures"]["grains_within_1"] <= 1 for r in rows)
