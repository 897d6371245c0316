"""Real Voronoi image sets, generated and measured once per session."""

from __future__ import annotations

import numpy as np
import pytest

from microstructure.stats import measure
from training.voronoi import VoronoiSpec, generate

SET_SIZE = 200  # images per real set: enough for stable statistics, small enough to stay fast


@pytest.fixture(scope="session")
def voronoi_sets() -> dict[str, np.ndarray]:
    """Disjoint real sets: real, real2 (floor), held_out (a perfect generator), train; labels."""
    rng = np.random.default_rng(2024)
    sets = {}
    for name in ("real", "real2", "held_out", "train"):
        sets[name], sets[f"{name}_labels"] = generate(VoronoiSpec(), SET_SIZE, rng)
    return sets


@pytest.fixture(scope="session")
def voronoi_measures(voronoi_sets) -> dict:
    return {name: measure(voronoi_sets[name]) for name in ("real", "real2", "held_out")}
