"""Training speed: this trainer against a straightforward reimplementation of the original loop.

    python bench/train_step.py                      # presets reference and cpu, 6 timed steps each
    python bench/train_step.py --presets cpu --steps 20

The baseline follows ../shared/reference/reference.md: a tf.function train step with three separate
critic calls (real, fake, interpolates), the generator step reusing the critic's noise, noise drawn
with tf.random inside the step, tf.data batches. Both sides use the same networks, batch, optimizers
and n_critic = 1, interleaved in one process so machine noise hits both alike. Prints seconds per
iteration and the ratio (ours / baseline iterations per second; above 1.0 means we are faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from training.config import resolve  # noqa: E402
from training.steps import distribute, draw_batch, make_step  # noqa: E402
from training.wgan import build_wgan  # noqa: E402


def original_step(generator, critic, g_opt, d_opt, z_dim, gp_weight):
    """The notebook's loop, as reference.md describes it (minus its defects' effects on speed)."""

    @tf.function
    def step(real):
        batch = tf.shape(real)[0]
        noise = tf.random.normal([batch, z_dim])
        with tf.GradientTape() as tape:
            fake = generator(noise, training=True)
            real_out = critic(real, training=True)
            fake_out = critic(fake, training=True)
            alpha = tf.random.uniform([batch, 1, 1, 1])
            inter = real + alpha * (fake - real)
            with tf.GradientTape() as gp_tape:
                gp_tape.watch(inter)
                pred = critic(inter, training=True)
            grads = gp_tape.gradient(pred, inter)
            norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))
            gp = tf.reduce_mean((norm - 1.0) ** 2)
            d_loss = tf.reduce_mean(fake_out) - tf.reduce_mean(real_out) + gp_weight * gp
        d_grads = tape.gradient(d_loss, critic.trainable_variables)
        d_opt.apply_gradients(zip(d_grads, critic.trainable_variables))
        with tf.GradientTape() as tape:
            fake = generator(noise, training=True)
            g_loss = -tf.reduce_mean(critic(fake, training=True))
        g_grads = tape.gradient(g_loss, generator.trainable_variables)
        g_opt.apply_gradients(zip(g_grads, generator.trainable_variables))
        return d_loss, g_loss

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["reference", "cpu"])
    parser.add_argument("--steps", type=int, default=6, help="timed iterations per side and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median taken)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    images = np.random.default_rng(0).uniform(-1, 1, (1024, 64, 64, 1)).astype(np.float32)
    print(f"tensorflow {tf.__version__}, {os.cpu_count()} cpus, batch {args.batch_size}")
    for preset in args.presets:
        compare_preset(preset, images, args)


def compare_preset(preset: str, images: np.ndarray, args) -> None:
    strategy = tf.distribute.get_strategy()
    cfg = resolve(preset, overrides=[f"batch_size={args.batch_size}", "total_steps=100000"])
    ours = build_wgan(cfg, strategy, False, 100000)
    ours_step = make_step(strategy, ours)
    base = build_wgan(cfg, strategy, False, 100000)
    base_step = original_step(
        base.generator, base.critic, base.g_optimizer, base.d_optimizer, cfg.z_noise_dim, cfg.gp_weight
    )
    batches = tf.data.Dataset.from_tensor_slices(images).repeat().batch(args.batch_size, drop_remainder=True)
    dataset = iter(batches.prefetch(2))
    steps_per_epoch = len(images) // args.batch_size
    done = [0]

    def run_ours(n):
        for _ in range(n):
            out = ours_step(distribute(strategy, draw_batch(cfg, images, done[0], steps_per_epoch)))
            done[0] += 1
        float(out["d_loss"])

    def run_base(n):
        for _ in range(n):
            out = base_step(next(dataset))
        float(out[0])

    run_ours(2)
    run_base(2)  # trace and warm up both
    times = {"ours": [], "original": []}
    for _ in range(args.rounds):
        for name, fn in (("original", run_base), ("ours", run_ours)):
            start = time.perf_counter()
            fn(args.steps)
            times[name].append((time.perf_counter() - start) / args.steps)
    ours_s, base_s = statistics.median(times["ours"]), statistics.median(times["original"])
    params = ours.generator.count_params(), ours.critic.count_params()
    print(
        f"{preset:10s} generator {params[0]:,} critic {params[1]:,} params | "
        f"ours {ours_s:.3f} s/it  original loop {base_s:.3f} s/it  ratio (ours/original it/s) {base_s / ours_s:.2f}"
    )


if __name__ == "__main__":
    main()
