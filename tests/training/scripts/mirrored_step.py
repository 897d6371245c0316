"""One tiny step under the default strategy and under MirroredStrategy over two logical CPUs, for
every generator head.

    python tests/training/scripts/mirrored_step.py adam|sgd

Both start from the same weights and see the same global batch, then update the generator's moving
average; prints the largest weight difference between them and the largest weight change of a
step. With SGD the update is proportional to the gradient, so a per-replica loss that is not
divided by the replica count (a 2x gradient) shows; Adam hides a constant gradient scale, which is
why both are run.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
from variants import VARIANTS, conditioning  # noqa: E402

from training.checkpoint import restore_arrays, state_arrays  # noqa: E402
from training.config import resolve  # noqa: E402
from training.steps import distribute, draw_batch, make_step  # noqa: E402
from training.wgan import build_average, build_wgan  # noqa: E402

images = np.random.default_rng(0).choice([-1.0, 1.0], size=(64, 64, 64, 1), p=[0.85, 0.15]).astype(np.float32)
strategies = (
    ("default", tf.distribute.get_strategy()),
    ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
)
report = {}
for head, variant in VARIANTS.items():
    cfg = resolve(
        "tiny",
        overrides=[*variant, "batch_size=16", "seed=3", "g_learning_rate=1e-4", "d_learning_rate=4e-4"],
    )
    results, initial = {}, None
    grains, record = conditioning(cfg)
    for name, strategy in strategies:
        wgan = build_wgan(cfg, strategy, False, 100, record)
        if sys.argv[1] == "sgd":
            with strategy.scope():
                wgan.compile(g_optimizer=keras.optimizers.SGD(0.1), d_optimizer=keras.optimizers.SGD(0.1))
                wgan.build_optimizers()
        average = build_average(cfg, strategy, wgan)
        if initial is None:
            initial = state_arrays(wgan, average)
        else:
            with strategy.scope():
                restore_arrays(wgan, initial, average)
        out = make_step(strategy, wgan)(distribute(strategy, draw_batch(cfg, images, 0, 4, grains)))
        average.update(1)  # in cross-replica context, as the training loop does
        state = state_arrays(wgan, average)
        results[name] = (state, {k: float(v) for k, v in out.items()}, strategy.num_replicas_in_sync)

    (a, loss_a, _), (b, loss_b, replicas) = results["default"], results["mirrored"]
    groups = ("generator", "critic", "generator_ema")
    report[head] = {
        "replicas": replicas,
        "max_difference": max(float(np.max(np.abs(x - y))) for g in groups for x, y in zip(a[g], b[g])),
        "max_change": max(float(np.max(np.abs(x - y))) for g in groups for x, y in zip(a[g], initial[g])),
        "losses": [loss_a, loss_b],
    }
print(json.dumps(report))
