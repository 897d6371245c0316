"""Grain statistics and S2 on hand-built images with known answers, and on real Voronoi images."""

from __future__ import annotations

import numpy as np
import pytest

from microstructure import network, stats
from microstructure.images import to_unit
from microstructure.stats import binarise, measure, segment, summarise, two_point_correlation

SIZE = 64


def blank() -> np.ndarray:
    return np.zeros((SIZE, SIZE), np.uint8)


def two_grains() -> np.ndarray:
    image = blank()
    image[31:33, :] = 255  # one straight boundary, edge to edge
    return image


def l_shaped() -> np.ndarray:
    """A boundary down from the top edge, then right to the right edge: one L-shaped grain."""
    image = blank()
    image[:33, 31:33] = 255
    image[31:33, 31:] = 255
    return image


def t_junction() -> np.ndarray:
    image = two_grains()
    image[:32, 31:33] = 255  # a second boundary from the top edge meets the first
    return image


def test_binarise_cuts_uint8_and_float_at_the_midpoint():
    values = np.array([[[0, 127, 128, 255]]], np.uint8)
    assert binarise(values).tolist() == [[[False, False, True, True]]]
    floats = np.array([[[-1.0, -0.01, 0.01, 1.0]]])
    assert binarise(floats).tolist() == [[[False, False, True, True]]]
    assert binarise(np.zeros((2, SIZE, SIZE, 1), np.float32)).shape == (2, SIZE, SIZE)


def test_binarise_rejects_other_dtypes():
    with pytest.raises(TypeError):
        binarise(np.zeros((1, SIZE, SIZE), np.int64))


def test_segment_two_grains_tile_the_image():
    labels = segment(two_grains())[0]
    assert labels.max() == 2
    assert sorted(np.bincount(labels.ravel())[1:].tolist()) == [32 * SIZE, 32 * SIZE]


def test_measure_two_grains_has_no_defects():
    m = measure(two_grains()[None])
    assert m.grain_count.tolist() == [2]
    assert m.grain_solidity.tolist() == [1.0, 1.0]
    assert m.dangling_ends.tolist() == [0] and m.detached.tolist() == [0]
    assert m.junctions.tolist() == [0]
    assert m.boundary_fraction.tolist() == [2 / SIZE]


def test_measure_t_junction_has_three_grains_and_one_junction():
    m = measure(t_junction()[None])
    assert m.grain_count.tolist() == [3]
    assert m.junctions.tolist() == [1]
    assert m.defect_free.tolist() == [True]


def test_measure_l_shaped_grain_is_not_convex():
    m = measure(l_shaped()[None])
    assert m.grain_count.tolist() == [2]
    solidity = sorted(m.grain_solidity.tolist())
    # The square corner grain is convex; the L (3/4 of the image) fills ~7/8 of its hull.
    assert solidity[1] == 1.0
    assert 0.8 < solidity[0] < 0.9
    assert m.defect_free.tolist() == [True]


def test_measure_small_pockets_are_boundary_noise():
    image = two_grains()
    image[8:12, 8:12] = 255
    image[9:11, 9:10] = 0  # a 2 px hole inside a blob: below MIN_GRAIN_AREA
    assert stats.MIN_GRAIN_AREA > 2
    assert measure(image[None]).grain_count.tolist() == [2]


def test_measure_float_images_match_uint8(voronoi_sets):
    images = voronoi_sets["real"][:20]
    a, b = measure(images), measure(to_unit(images)[..., None])
    assert np.array_equal(a.grain_area, b.grain_area)
    assert np.allclose(a.s2, b.s2)


def test_measures_subset_equals_measuring_the_subset(voronoi_sets):
    images = voronoi_sets["real"][:30]
    index = np.array([5, 2, 2, 17])
    whole, part = measure(images).subset(index), measure(images[index])
    for field in ("grain_area", "grain_solidity", "grain_count", "thumbnails", "junctions"):
        assert np.array_equal(getattr(whole, field), getattr(part, field)), field
    assert np.allclose(whole.s2, part.s2)  # FFT rounding depends on the batch


def test_s2_at_zero_is_the_boundary_fraction(voronoi_sets):
    boundary = binarise(voronoi_sets["real"][:50])
    s2 = two_point_correlation(boundary)
    assert s2.shape == (50, stats.S2_MAX_RADIUS + 1)
    assert np.allclose(s2[:, 0], boundary.mean(axis=(1, 2)))


def test_s2_is_the_non_periodic_estimate():
    # Every pair of pixels is boundary: the pair-count normalisation must give exactly 1 at every r.
    assert np.allclose(two_point_correlation(np.ones((1, SIZE, SIZE), bool)), 1.0)
    # r = 1 averages the 8 displacements that round to 1, each over the pixel pairs it has.
    boundary = np.random.default_rng(0).random((1, SIZE, SIZE)) < 0.3
    b = boundary[0]
    expected = []
    for dy, dx in [(0, 1), (1, 0), (1, 1), (1, -1)]:  # and their opposites, which are equal
        a = b[max(0, dy) : SIZE + min(0, dy), max(0, dx) : SIZE + min(0, dx)]
        c = b[max(0, -dy) : SIZE + min(0, -dy), max(0, -dx) : SIZE + min(0, -dx)]
        expected.append((a & c).mean())
    assert two_point_correlation(boundary)[0, 1] == pytest.approx(np.mean(expected))


def test_real_voronoi_images_are_defect_free_and_convex(voronoi_sets, voronoi_measures):
    m = voronoi_measures["real"]
    truth = np.array([len(np.unique(labels)) for labels in voronoi_sets["real_labels"]])
    assert (m.grain_count == truth).mean() >= 0.98
    assert m.defect_free.mean() >= 0.9
    assert m.grain_solidity.mean() >= 0.99
    assert (m.grain_solidity >= stats.CONVEX_SOLIDITY).mean() >= 0.98


def test_summarise_gives_json_ready_set_figures(voronoi_measures):
    summary = summarise(voronoi_measures["real"])
    assert summary["images"] == 200
    assert 5 <= summary["grains_per_image"] <= 12
    assert len(summary["s2"]) == stats.S2_MAX_RADIUS + 1
    assert all(isinstance(v, (int, float, list)) for v in summary.values())


def test_enclosed_area_constant_matches_grain_area():
    assert network.MIN_ENCLOSED_AREA == stats.MIN_GRAIN_AREA
