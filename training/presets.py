"""The named starting points of a config (`--preset`): each is a set of TrainConfig values.

cpu        the default: the Laguerre tessellation arrangement of voronoi64 v2, and of v3 with
           condition=grains g_weights=equal total_steps=4000 (recipes/voronoi64-grains.sh)
pixel      the pixel generator that shipped as voronoi64 v1, exactly (no overrides needed)
reference  the original notebook's networks
tiny       for tests: seconds per epoch

>>> from training.presets import PRESETS
>>> sorted(PRESETS)
['cpu', 'pixel', 'reference', 'tiny']
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # The original notebook's networks, exactly.
    "reference": dict(
        g_head="image",
        z_noise_dim=100,
        g_base=512,
        g_filters=(256, 128, 64),
        d_filters=(64, 128, 256, 512),
        d_kernel=4,
        epochs=100,
    ),
    # Sized by measurement for 2 CPU cores (bench/variants.py, the README's "The shipped model"): the
    # shipped voronoi64 v2, a Laguerre tessellation whose site count the latent draws, trained at
    # twice the original TTUR learning rates over 8,000 steps (about an hour on 2 cores).
    "cpu": dict(
        g_head="laguerre",
        g_count="uniform",
        z_noise_dim=100,
        g_base=128,
        g_filters=(128, 64, 32),
        d_filters=(32, 64, 128, 256),
        d_kernel=4,
        g_learning_rate=2e-4,
        d_learning_rate=8e-4,
        total_steps=8000,
    ),
    # The pixel generator that shipped as voronoi64 v1 (docs/voronoi64-v1.md), for comparisons.
    "pixel": dict(
        g_head="image",
        g_top=16,
        g_convs=2,
        g_learning_rate=2e-4,
        d_learning_rate=8e-4,
        total_steps=24000,
        ema_decay=0.0,
    ),
    # For tests: seconds per epoch; learning rates high enough that a hundred steps visibly learn.
    "tiny": dict(
        g_head="laguerre",
        g_count="uniform",
        g_hidden=32,
        z_noise_dim=16,
        g_base=16,
        g_filters=(16, 8, 8),
        d_filters=(8, 16, 16, 32),
        d_kernel=4,
        batch_size=16,
        g_learning_rate=1e-3,
        d_learning_rate=2e-3,
        epochs=2,
        log_interval=5,
        frame_interval=10,
        checkpoint_interval=10,
        eval_interval=0,
        eval_samples=64,
    ),
}
