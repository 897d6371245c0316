"""The generator variants the precision and distribution scripts step: every head, and the grain-count
condition (on the laguerre head, where it is structural), with what each needs beside the images."""

import numpy as np

from training.conditions import grain_record
from training.config import HEADS

VARIANTS = {**{head: [f"g_head={head}"] for head in HEADS}, "laguerre+grains": ["g_head=laguerre", "condition=grains"]}
GRAINS = np.random.default_rng(1).integers(5, 13, size=64)  # a grain count for each of the 64 images


def conditioning(cfg):
    """(grains per image, their record) for a conditional config, (None, None) otherwise."""
    return (GRAINS, grain_record(GRAINS)) if cfg.condition == "grains" else (None, None)
