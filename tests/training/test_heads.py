"""Generator heads: each draws 64 px images; the partition heads draw them with the dataset's rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from microstructure.boundaries import boundary_mask
from tests.conftest import run_cli
from training.config import resolve
from training.heads import partition_outputs
from training.networks import build_critic, build_generator
from training.wgan import pack


def _rule(labels: np.ndarray, width: int = 2) -> np.ndarray:
    """The dataset's boundary rule in numpy, as images in [-1, 1]."""
    return np.where(boundary_mask(labels, width), 1.0, -1.0)


@pytest.mark.parametrize("head", ["image", "laguerre", "partition"])
def test_every_head_draws_64px_images_in_range(head):
    generator = build_generator(resolve("tiny", overrides=[f"g_head={head}"]))
    images = generator(tf.random.stateless_normal([8, 16], seed=[1, 1])).numpy()
    assert images.shape == (8, 64, 64, 1) and images.min() >= -1.0 and images.max() <= 1.0
    if head == "image":
        assert partition_outputs(generator) is None
    else:
        assert set(np.unique(images)) == {-1.0, 1.0}  # exactly binary, like the data


def test_laguerre_head_draws_the_power_diagram_of_its_sites():
    generator = build_generator(resolve("tiny", overrides=["g_sites=12"]))
    z = tf.random.stateless_normal([16, 16], seed=[2, 3])
    out = partition_outputs(generator)(z)
    sites, weights = out["sites"].numpy() * 64, out["weights"].numpy() * 64**2  # pixels, pixels^2
    assert sites.shape == (16, 12, 2) and weights.shape == (16, 12)
    centres = np.arange(64) + 0.5
    power = (
        (centres[None, None, :, None] - sites[:, None, None, :, 0]) ** 2
        + (centres[None, :, None, None] - sites[:, None, None, :, 1]) ** 2
        - weights[:, None, None, :]
    )
    labels = power.argmin(axis=-1)
    assert np.mean(labels == out["logits"].numpy().argmax(axis=-1)) > 0.999  # all but float ties
    assert np.array_equal(_rule(out["logits"].numpy().argmax(axis=-1)), generator(z).numpy()[..., 0])
    # Sites may leave the image (their grains then leave the view), within the head's box.
    assert sites.min() >= -0.15 * 64 - 1e-3 and sites.max() <= 1.15 * 64 + 1e-3


def test_count_gate_draws_the_number_of_sites_from_the_first_latent():
    """g_count=uniform: z_0 sets how many sites are present (uniform over the range, 4..12 of 16 at the
    start); absent sites own no pixel, so images with a low z_0 have few grains and with a high one many."""
    generator = build_generator(resolve("tiny", overrides=["g_count=uniform"]))
    z = tf.random.stateless_normal([64, 16], seed=[6, 7]).numpy()
    z[:32, 0], z[32:, 0] = -6.0, 6.0  # the two ends of the range: 4 and 12 sites
    labels = partition_outputs(generator)(z)["logits"].numpy().argmax(axis=-1)
    used = [np.unique(image) for image in labels]
    assert all(image.max() < 4 for image in used[:32]) and all(image.max() < 12 for image in used[32:])
    assert np.mean([len(image) for image in used[32:]]) > 2 * np.mean([len(image) for image in used[:32]])
    lo, hi = (float(tf.sigmoid(w)) for w in generator.get_layer("count").weights)
    assert (lo, hi) == pytest.approx((0.25, 0.75))  # learnt: they are weights of the generator


def test_partition_head_draws_its_label_map():
    generator = build_generator(resolve("tiny", overrides=["g_head=partition", "g_sites=5", "render_width=3"]))
    z = tf.random.stateless_normal([4, 16], seed=[4, 5])
    labels = partition_outputs(generator)(z)["logits"].numpy().argmax(axis=-1)
    assert np.array_equal(_rule(labels, 3), generator(z).numpy()[..., 0])


def test_packed_critic_judges_groups_of_images():
    images = tf.reshape(tf.range(4 * 64 * 64, dtype=tf.float32), [4, 64, 64, 1])
    packed = pack(images, 2).numpy()
    assert packed.shape == (2, 64, 64, 2)
    assert np.array_equal(packed[1, ..., 0], images.numpy()[2, ..., 0])
    assert np.array_equal(packed[1, ..., 1], images.numpy()[3, ..., 0])
    assert build_critic(resolve("tiny", overrides=["d_pack=2"])).input_shape == (None, 64, 64, 2)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("g_head=voxels", "config key 'g_head': must be one of image, laguerre, partition"),
        ("render_width=0", "config key 'render_width'"),
        ("render_width=17", "config key 'render_width': must be 1..16"),
        ("g_sites=1", "config key 'g_sites'"),
        ("d_pack=3", "config key 'd_pack': batch_size 16 is not a multiple of 3"),
    ],
)
def test_bad_head_settings_are_refused_by_name(tmp_path, override, message):
    result = run_cli(
        "training", "train", "--data", tmp_path / "x.zip", "--run-dir", tmp_path / "r", "--preset", "tiny",
        "--set", override, "--dry-run",
    )  # fmt: skip
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("head", ["image", "partition"])
def test_other_heads_train_resume_and_export_through_the_cli(tmp_path, synthetic_zip, head):
    """The tiny session run covers laguerre end to end; the other heads train, resume and export too."""
    import json
    import subprocess
    import sys

    from tests.conftest import ENV

    run_dir, store = tmp_path / "run", tmp_path / "store"
    train = ("training", "train", "--run-dir", run_dir, "--set", "total_steps=12")
    first = ("--data", synthetic_zip, "--preset", "tiny", "--set", f"g_head={head}", "--set", "total_steps=6")
    run_cli(*train[:4], *first, check=True)
    resumed = run_cli(*train, check=True)
    assert "resumed from ckpt-0000006.npz at step 6/12" in resumed.stdout
    run_cli("training", "export", "--run-dir", run_dir, "--store", store, "--name", head, check=True)
    card = json.loads((store / head / "1" / "model.json").read_text())
    assert card["head"] == head and card["steps"] == 12
    script = Path(__file__).parent / "scripts" / "load_export.py"
    result = subprocess.run(
        [sys.executable, str(script), str(store / head / "1")], capture_output=True, text=True, timeout=300,
        env={k: v for k, v in ENV.items() if k != "PYTHONPATH"}, cwd=store,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["training_imported"] is False and loaded["sample_shape"] == [100, 64, 64]
    if head == "image":
        assert loaded["signatures"] == ["sample", "serving_default"] and not loaded["partition"]
    else:
        assert loaded["partition"]["keys"] == ["labels"] and loaded["partition"]["sample_is_rule_of_labels"]


def test_equal_weights_draw_the_voronoi_tessellation_of_the_sites():
    """g_weights=equal: every site weighs the same, so each pixel goes to its nearest site and every site
    owns the pixel it sits on (no site can be outweighed into owning nothing)."""
    generator = build_generator(resolve("tiny", overrides=["g_weights=equal", "g_count=free"]))
    out = partition_outputs(generator)(tf.random.stateless_normal([16, 16], seed=[8, 1]))
    assert np.all(out["weights"].numpy() == 0.0)
    sites = out["sites"].numpy() * 64
    centres = np.arange(64) + 0.5
    distance = (centres[None, None, :, None] - sites[:, None, None, :, 0]) ** 2 + (
        centres[None, :, None, None] - sites[:, None, None, :, 1]
    ) ** 2
    assert np.mean(distance.argmin(axis=-1) == out["logits"].numpy().argmax(axis=-1)) > 0.999
