"""Training speed of config variants, side by side: how much slower is each than the first?

    python bench/variants.py                                   # each generator head beside v1's arrangement
    python bench/variants.py --variant base=g_top=16 --variant deep=g_top=16,g_convs=2 --steps 5

Each variant is `name=key=value[,key=value...]` over the `cpu` preset (`--set` syntax; a value with
commas, such as `g_filters=[128,64,64]`, is written with semicolons: `g_filters=[128;64;64]`). All
variants are built in one process and timed in alternating rounds, so machine noise hits them alike;
prints seconds per iteration (one critic and one generator step) and each one's cost relative to
the first variant (1.19 = 19% slower per step).
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

DEFAULT_VARIANTS = [
    "v1=g_head=image,g_top=16,g_convs=2",
    "v2=g_head=laguerre,g_count=uniform",
    "lag_free=g_head=laguerre,g_count=free",
    "lag_pack2=g_head=laguerre,g_count=free,d_pack=2",
    "partition=g_head=partition",
]


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise SystemExit(f"bad --variant {text!r}: expected name=key=value[,key=value...]")
    return name, [item.replace(";", ",") for item in rest.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", action="append", help="name=key=value[,key=value...] (repeatable)")
    parser.add_argument("--steps", type=int, default=5, help="timed iterations per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median taken)")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant or DEFAULT_VARIANTS]

    import numpy as np
    import tensorflow as tf

    from training.config import resolve
    from training.errors import UserError
    from training.steps import distribute, draw_batch, make_step
    from training.wgan import build_wgan

    images = np.random.default_rng(0).uniform(-1, 1, (1024, 64, 64, 1)).astype(np.float32)
    strategy = tf.distribute.get_strategy()
    print(f"tensorflow {tf.__version__}, {os.cpu_count()} cpus")
    runners = {}
    for name, overrides in variants:
        try:
            cfg = resolve("cpu", overrides=["total_steps=100000", "ema_decay=0", *overrides])
        except UserError as exc:
            raise SystemExit(f"variant {name}: {exc}") from None
        wgan = build_wgan(cfg, strategy, False, 100000)
        step = make_step(strategy, wgan)
        per_epoch = len(images) // cfg.batch_size

        def run(n, cfg=cfg, step=step, per_epoch=per_epoch):
            for i in range(n):
                out = step(distribute(strategy, draw_batch(cfg, images, i, per_epoch)))
            float(out["d_loss"])

        run(2)  # trace and warm up
        runners[name] = (run, wgan.generator.count_params(), wgan.critic.count_params())

    times = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, (run, *_) in runners.items():
            start = time.perf_counter()
            run(args.steps)
            times[name].append((time.perf_counter() - start) / args.steps)
    first = statistics.median(times[variants[0][0]])
    for name, (_, g_params, d_params) in runners.items():
        seconds = statistics.median(times[name])
        print(
            f"{name:12s} generator {g_params:>9,} critic {d_params:>9,} params | "
            f"{seconds:.3f} s/it  x{seconds / first:.2f} vs {variants[0][0]}"
        )


if __name__ == "__main__":
    main()
