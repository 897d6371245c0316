"""One tiny WGAN-GP step under a given dtype policy, then 19 more, for every generator head (and the
grain condition); prints the relative weight change per head.

    python tests/training/scripts/precision_step.py mixed_float16

Run in a fresh process because the Keras dtype policy is global. Both policies start from the same
seeded weights and see the same batch at the default TTUR learning rates, so their first updates
should agree closely.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from variants import VARIANTS, conditioning  # noqa: E402

from training.checkpoint import state_arrays  # noqa: E402
from training.config import resolve  # noqa: E402
from training.steps import distribute, draw_batch, make_step  # noqa: E402
from training.wgan import build_wgan  # noqa: E402

policy = sys.argv[1]
keras.mixed_precision.set_dtype_policy(policy)
images = np.random.default_rng(0).choice([-1.0, 1.0], size=(64, 64, 64, 1), p=[0.85, 0.15]).astype(np.float32)
report = {}
for head, variant in VARIANTS.items():
    cfg = resolve(
        "tiny",
        overrides=[*variant, "batch_size=16", "seed=3", "g_learning_rate=1e-4", "d_learning_rate=4e-4"],
    )
    strategy = tf.distribute.get_strategy()
    grains, record = conditioning(cfg)
    wgan = build_wgan(cfg, strategy, policy == "mixed_float16", 100, record)
    step = make_step(strategy, wgan)

    before = state_arrays(wgan)
    step(distribute(strategy, draw_batch(cfg, images, 0, 4, grains)))
    after = state_arrays(wgan)

    def relative_change(group, after=after, before=before):
        change = sum(float(np.sum((a - b) ** 2)) for a, b in zip(after[group], before[group]))
        size = sum(float(np.sum(b**2)) for b in before[group])
        return (change / size) ** 0.5

    finite = True
    for i in range(1, 20):
        out = step(distribute(strategy, draw_batch(cfg, images, i, 4, grains)))
        finite &= all(np.isfinite(float(v)) for v in out.values())
    finite &= all(np.isfinite(w).all() for group in state_arrays(wgan).values() for w in group)
    names = {layer.name for layer in wgan.generator.layers}
    report[head] = {
        "generator": relative_change("generator"),
        "critic": relative_change("critic"),
        "finite": bool(finite),
        "compute_dtype": wgan.generator.get_layer("mlp1" if head.startswith("laguerre") else "conv1").compute_dtype,
        # Label logits and rendering stay float32 under mixed precision.
        "logits_dtype": wgan.generator.get_layer("logits").compute_dtype if "logits" in names else None,
        "images_dtype": wgan.generator.get_layer("images").compute_dtype,
        "loss_scale_optimizer": isinstance(wgan.g_optimizer, keras.optimizers.LossScaleOptimizer)
        and isinstance(wgan.d_optimizer, keras.optimizers.LossScaleOptimizer),
    }
print(json.dumps(report))
