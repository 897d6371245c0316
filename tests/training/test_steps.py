"""A step's batch is a function of (seed, step): what makes a resumed run replay exactly."""

from __future__ import annotations

import numpy as np

from training.config import resolve
from training.steps import draw_batch


def _reals(cfg, images, step, steps_per_epoch):
    return draw_batch(cfg, images, step, steps_per_epoch)["real"][..., 0, 0, 0].astype(int).ravel().tolist()


def test_batches_follow_seed_and_step_and_each_epoch_uses_an_image_once():
    images = np.arange(24, dtype=np.float32)[:, None, None, None] * np.ones((1, 64, 64, 1), np.float32)
    cfg = resolve("tiny", overrides=["batch_size=4", "n_critic=2", "seed=3"])
    steps_per_epoch = 24 // (4 * 2)
    epoch0 = [_reals(cfg, images, step, steps_per_epoch) for step in range(steps_per_epoch)]
    assert sorted(sum(epoch0, [])) == list(range(24))  # every image once per epoch
    assert [_reals(cfg, images, step, steps_per_epoch) for step in range(steps_per_epoch)] == epoch0
    assert _reals(cfg, images, steps_per_epoch, steps_per_epoch) != epoch0[0]  # the next epoch reshuffles
    other_seed = resolve("tiny", overrides=["batch_size=4", "n_critic=2", "seed=4"])
    assert _reals(other_seed, images, 0, steps_per_epoch) != epoch0[0]
    first, again = draw_batch(cfg, images, 1, steps_per_epoch), draw_batch(cfg, images, 1, steps_per_epoch)
    assert all(np.array_equal(first[key], again[key]) for key in first)  # noise too
    assert first["real"].shape == (2, 4, 64, 64, 1) and first["z_g"].shape == (4, cfg.z_noise_dim)
