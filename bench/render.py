"""Cost of drawing a partition: the hand-written straight-through renderer against autodiff of the soft
rule, and the renderer's share of a laguerre training step, side by side.

    python bench/render.py                      # batch 64, 16 labels, width 2
    python bench/render.py --batch 64 --labels 16 --rounds 5

Times forward + backward of `training.render.render_partition` and of the same rule written as soft
products left to autodiff (a one-hot straight-through softmax, as a first version would), on the
same logits, in alternating rounds; then one full laguerre training step (critic and generator) with
the renderer as built. Prints seconds and ratios (machine noise hits all alike).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--labels", type=int, default=16)
    parser.add_argument("--width", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10, help="calls per variant and round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (median taken)")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from training.config import resolve
    from training.render import autodiff_render, render_partition
    from training.steps import distribute, draw_batch, make_step
    from training.wgan import build_wgan

    def timed(render):
        @tf.function
        def call(logits, upstream):
            with tf.GradientTape() as tape:
                tape.watch(logits)
                loss = tf.reduce_sum(render(logits) * upstream)
            return tape.gradient(loss, logits)

        return call

    logits = tf.random.stateless_normal([args.batch, 64, 64, args.labels], seed=[1, 2])
    upstream = tf.random.stateless_normal([args.batch, 64, 64, 1], seed=[3, 4])
    variants = {
        "hand-written": timed(lambda x: render_partition(x, args.width)),
        "autodiff": timed(lambda x: autodiff_render(x, args.width)),
    }
    cfg = resolve("cpu", overrides=["g_head=laguerre", "ema_decay=0", f"g_sites={args.labels}"])
    strategy = tf.distribute.get_strategy()
    step = make_step(strategy, build_wgan(cfg, strategy, False, 100000))
    images = np.random.default_rng(0).choice([-1.0, 1.0], size=(1024, 64, 64, 1)).astype(np.float32)

    def training_step(i=[0]):  # noqa: B006 (a counter across calls)
        i[0] += 1
        return step(distribute(strategy, draw_batch(cfg, images, i[0], len(images) // cfg.batch_size)))["d_loss"]

    calls = {name: (lambda f=f: f(logits, upstream)) for name, f in variants.items()}
    calls["laguerre step"] = training_step
    for call in calls.values():
        call()  # trace and warm up
    times = {name: [] for name in calls}
    for _ in range(args.rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(args.repeats):
                out = call()
            float(tf.reduce_sum(out))
            times[name].append((time.perf_counter() - start) / args.repeats)
    median = {name: statistics.median(values) for name, values in times.items()}
    shape = f"{args.batch}x64x64x{args.labels}"
    print(f"tensorflow {tf.__version__}, {os.cpu_count()} cpus; logits {shape}, width {args.width}")
    for name in variants:
        print(
            f"render forward+backward, {name:12s} {median[name] * 1000:7.1f} ms  "
            f"x{median[name] / median['hand-written']:.2f} vs hand-written  "
            f"{median[name] / median['laguerre step']:.0%} of a laguerre step"
        )
    print(f"laguerre training step (critic + generator)  {median['laguerre step'] * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
