"""compare() on three fake generators: held-out real images, training copies, one image repeated."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from microstructure.compare import compare, wasserstein_integers


def test_compare_held_out_real_images_pass_every_verdict(voronoi_sets, voronoi_measures):
    m = voronoi_measures
    report = compare(m["held_out"], m["real"], m["real2"], train=voronoi_sets["train"])
    assert report["failed"] == []
    assert report["passed"] and report["score"] <= 1.0
    assert set(report["distances"]) == {
        "s2_error",
        "grain_area_w1",
        "boundary_fraction_diff",
        "grain_count_w1",
        "solidity_diff",
        "defect_free_shortfall",
        "diversity_loss",
        "memorisation",
    }


def test_compare_repeated_image_fails_diversity(voronoi_sets, voronoi_measures):
    same = np.repeat(voronoi_sets["held_out"][:1], 200, axis=0)
    report = compare(same, voronoi_measures["real"], voronoi_measures["real2"])
    assert "diversity_loss" in report["failed"]
    assert report["distances"]["diversity_loss"]["value"] > 0.9


def test_compare_training_copies_fail_memorisation(voronoi_sets, voronoi_measures):
    train = voronoi_sets["train"]
    report = compare(train, voronoi_measures["real"], voronoi_measures["real2"], train=train)
    assert report["failed"] == ["memorisation"]


def test_compare_without_train_skips_memorisation_and_is_json(voronoi_measures):
    m = voronoi_measures
    report = compare(m["held_out"], m["real"], m["real2"])
    assert "memorisation" not in report["distances"]
    assert report["sizes"] == {"generated": 200, "real": 200, "real_floor": 200, "train": 0}
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_wasserstein_integers_matches_scipy():
    rng = np.random.default_rng(0)
    u, v = rng.integers(0, 500, 300), rng.integers(3, 700, 211)
    assert wasserstein_integers(u, v) == pytest.approx(wasserstein_distance(u, v))
