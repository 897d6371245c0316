"""microstructure.tessellation: exact grain polygons of a Laguerre tessellation, and its raster at any size."""

from __future__ import annotations

import numpy as np
import pytest

from microstructure.boundaries import draw_boundaries
from microstructure.tessellation import rasterise, scale, tessellate


def _random(seed: int, batch: int = 8, count: int = 12, size: float = 64.0):
    rng = np.random.default_rng(seed)
    sites = rng.uniform(-0.15 * size, 1.15 * size, (batch, count, 2))
    weights = rng.normal(0.0, 20.0, (batch, count))
    weights[:, -2:] -= 1e5  # absent sites, as the count gate leaves them: they own nothing
    return sites, weights


def _raster_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        differs = a != b
        pairs |= {tuple(sorted(p)) for p in zip(a[differs].tolist(), b[differs].tolist())}
    return pairs


def test_two_and_three_sites_give_the_textbook_cells():
    (two,) = tessellate(np.array([[[16.0, 32.0], [48.0, 32.0]]]), np.zeros((1, 2)), 64)
    assert [(g.area, g.centroid, g.perimeter) for g in two.grains] == [
        (2048.0, (16.0, 32.0), 192.0),
        (2048.0, (48.0, 32.0), 192.0),
    ]
    assert len(two.junctions) == 0  # two grains meet along an edge, never three at a point
    # A weight moves the boundary: |x - 16|^2 - 256 = |x - 48|^2  <=>  x = 36.
    (weighted,) = tessellate(np.array([[[16.0, 32.0], [48.0, 32.0]]]), np.array([[256.0, 0.0]]), 64)
    assert weighted.grains[0].area == pytest.approx(36 * 64)
    # Three sites symmetric about the vertical line x = 32 meet at one triple junction on it.
    sites = np.array([[[16.0, 16.0], [48.0, 16.0], [32.0, 56.0]]])
    (three,) = tessellate(sites, np.zeros((1, 3)), 64)
    assert [g.neighbours for g in three.grains] == [[1, 2], [0, 2], [0, 1]]
    (junction,) = three.junctions
    assert junction[0] == pytest.approx(32.0) and 16.0 < junction[1] < 56.0


def test_polygons_tile_the_image_and_agree_with_each_other():
    sites, weights = _random(1)
    for image in tessellate(sites, weights, 64):
        assert sum(g.area for g in image.grains) == pytest.approx(64 * 64)
        assert all(g.site < 10 for g in image.grains)  # the absent sites own nothing
        by_site = {g.site: g for g in image.grains}
        for grain in image.grains:
            for other, length in zip(grain.neighbours, grain.shared):
                mirror = by_site[other]
                assert mirror.shared[mirror.neighbours.index(grain.site)] == pytest.approx(length)


@pytest.mark.parametrize("size", [64, 256])
def test_polygons_match_the_raster_areas_and_neighbour_graph(size):
    sites, weights = _random(2)
    sites, weights = scale(sites, weights, size / 64)
    for b, image in enumerate(tessellate(sites, weights, size)):
        labels = rasterise(sites[b], weights[b], size)
        for grain in image.grains:  # a pixel centre decides a pixel: the error lies along the outline
            assert abs((labels == grain.site).sum() - grain.area) <= grain.perimeter / 2 + 4
        area = {g.site: g.area for g in image.grains}
        polygon_pairs = {  # slivers under 4 px^2 may own no pixel centre at all
            tuple(sorted((g.site, n)))
            for g in image.grains
            for n, length in zip(g.neighbours, g.shared)
            if length >= 2 and min(area[g.site], area[n]) >= 4 * (size / 64) ** 2
        }
        raster_pairs = _raster_pairs(labels)
        assert polygon_pairs <= raster_pairs
        # Grains that touch only in pixels meet at a junction's short edge (under 2 px) in the polygons.
        near = {tuple(sorted((g.site, n))) for g in image.grains for n in g.neighbours}
        for a, c in raster_pairs - near:
            pa, pc = (next(g.polygon for g in image.grains if g.site == s) for s in (a, c))
            assert np.min(np.linalg.norm(pa[:, None] - pc[None], axis=-1)) < 2.0 * size / 64


def test_the_same_microstructure_drawn_larger_is_the_same_geometry_scaled():
    sites, weights = _random(3, batch=2)
    small = tessellate(sites, weights, 64)
    large = tessellate(*scale(sites, weights, 8), 512)
    for a, b in zip(small, large):
        assert [g.site for g in a.grains] == [g.site for g in b.grains]
        assert [g.area * 64 for g in a.grains] == pytest.approx([g.area for g in b.grains])
        np.testing.assert_allclose(a.junctions * 8, b.junctions, atol=1e-6)
    # The 512 px raster, brought back to 64 px by its pixel centres, is the 64 px raster.
    coarse = rasterise(sites[0], weights[0], 64)
    fine = rasterise(*scale(sites[0], weights[0], 8), 512)
    assert np.mean(fine[4::8, 4::8] == coarse) > 0.99


def test_raster_at_64px_is_the_models_own_sample(tiny_store):
    """The exported laguerre model's sites and weights, rasterised here, draw the model's `sample` images."""
    import tensorflow as tf

    model = tf.saved_model.load(str(tiny_store / "tiny" / "1"))
    seeds, indices = tf.fill([32], tf.constant(9, tf.int64)), tf.range(32, dtype=tf.int64)
    images = model.signatures["sample"](seeds=seeds, indices=indices)["images"].numpy()
    out = model.signatures["partition"](seeds=seeds, indices=indices)
    sites, weights = out["sites"].numpy(), out["weights"].numpy()
    labels = np.stack([rasterise(s, w, 64) for s, w in zip(sites, weights)])
    assert np.mean(draw_boundaries(labels) != images) <= 0.001  # identical but for exact ties
    for b, image in enumerate(tessellate(sites, weights, 64)):
        assert sum(g.area for g in image.grains) == pytest.approx(64 * 64)
        owners = set(np.unique(labels[b]).tolist())
        assert owners <= {g.site for g in image.grains}  # a site owning a pixel is a grain
        assert {g.site for g in image.grains if g.area >= 50} <= owners


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="expected sites"):
        tessellate(np.zeros((3, 2)), np.zeros(3), 64)
