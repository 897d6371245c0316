"""One training step's data path: the batch drawn on the host, sliced per replica, stepped, summed back.

    batch = draw_batch(cfg, images, step, steps_per_epoch[, grains])   # a function of (seed, step)
    losses = make_step(strategy, wgan)(distribute(strategy, batch))    # global-batch figures

All randomness of a step (the real images' order, noise, interpolation weights, a conditional run's
counts) is drawn here from (seed, step), so a resumed run replays exactly and every replica sees its
own slice of one global draw.
"""

from __future__ import annotations

import numpy as np

from training.config import TrainConfig

GENERATOR_STEP_KEYS = ("z_g", "grains_g")  # batch entries of the generator step; the others lead with n_critic


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled image order of one epoch: a function of (seed, epoch) alone, so resumes replay it."""
    return np.random.default_rng([seed, epoch]).permutation(count)


def draw_batch(
    cfg: TrainConfig, images: np.ndarray, step: int, steps_per_epoch: int, grains: np.ndarray | None = None
) -> dict:
    """Real batches and all noise of generator step `step` (0-based): a function of (seed, step).
    With `grains` (the count of every image, for a conditional run) the real batches' counts, and
    counts for the generator step drawn from the data's own."""
    epoch, within = divmod(step, steps_per_epoch)
    per_step = cfg.n_critic * cfg.batch_size
    order = epoch_order(len(images), cfg.seed, epoch)[within * per_step : (within + 1) * per_step]
    rng = np.random.default_rng([cfg.seed, step])
    shape = (cfg.n_critic, cfg.batch_size)
    batch = {
        "real": images[order].reshape(*shape, *images.shape[1:]),
        "z_d": rng.standard_normal((*shape, cfg.z_noise_dim), np.float32),
        "alpha": rng.random((*shape, 1, 1, 1), np.float32),
        "z_g": rng.standard_normal((cfg.batch_size, cfg.z_noise_dim), np.float32),
    }
    if grains is not None:
        batch["grains"] = grains[order].reshape(shape).astype(np.int32)
        batch["grains_g"] = grains[rng.integers(0, len(grains), cfg.batch_size)].astype(np.int32)
    return batch


def distribute(strategy, batch: dict):
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return {k: tf.constant(v) for k, v in batch.items()}

    def replica_slice(context):
        r = context.replica_id_in_sync_group
        per = batch["z_g"].shape[0] // replicas
        part = slice(r * per, (r + 1) * per)
        return {k: tf.constant(v[part] if k in GENERATOR_STEP_KEYS else v[:, part]) for k, v in batch.items()}

    return strategy.experimental_distribute_values_from_function(replica_slice)


def make_step(strategy, wgan, jit_compile: bool = False):
    """The distributed step (XLA measured slower on CPU, so off by default)."""
    import tensorflow as tf

    replica_step = tf.function(wgan.train_step, jit_compile=jit_compile)

    @tf.function
    def step(batch):
        out = strategy.run(replica_step, args=(batch,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in out.items()}

    return step
