"""A tessellation model's samples as geometry: drawn at any size, grains as JSON, boundaries as SVG.

    sites, weights = sites_of(generator, seed=7, start=0, n=4)        # the model's own, 64 px units
    images, labels = draw(sites, weights, size=512, width=2)          # uint8 / int32 (4, 512, 512)
    records = describe(sites, weights, seed=7, start=0, size=512)     # JSON-ready, one per image
    text = svg(sites[0], weights[0], size=512, width=2)               # the boundary network, vector paths

A laguerre model's `partition` signature gives every image's sites and weights; everything here is
exact geometry from them (microstructure.tessellation), so one (model, version, seed, index) is one
microstructure in every format and at every size.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from microstructure.boundaries import draw_boundaries
from microstructure.images import SIZE
from microstructure.tessellation import FRAME, Tessellation, rasterise, scale, tessellate

_BLOCK = 64  # images per tessellation pass
GRID_PAD = 2  # px between the images of a grid, as format=grid's PNG mosaic


def has_tessellation(generator) -> bool:
    return getattr(generator, "head", "image") == "laguerre"


def sites_of(generator, seed: int, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sites (n, K, 2) and weights (n, K) of images start..start+n-1 of a seed, in 64 px units."""
    out = generator.partition(np.full(n, seed, np.int64), np.arange(start, start + n, dtype=np.int64))
    return out["sites"].astype(np.float64), out["weights"].astype(np.float64)


def draw(sites: np.ndarray, weights: np.ndarray, size: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, size, size), site labels int32 (n, size, size)) with the dataset's boundary rule."""
    factor = size / SIZE
    labels = np.stack([rasterise(*scale(s, w, factor), size) for s, w in zip(sites, weights)])
    return draw_boundaries(labels, width), labels


def describe(sites: np.ndarray, weights: np.ndarray, seed: int, start: int, size: int) -> Iterator[dict]:
    """One JSON-ready record per image, in pixels of a size x size image (a block at a time)."""
    for first in range(0, len(sites), _BLOCK):
        block = slice(first, first + _BLOCK)
        block_sites, block_weights = scale(sites[block], weights[block], size / SIZE)
        for offset, tessellation in enumerate(tessellate(block_sites, block_weights, size)):
            yield _record(start + first + offset, seed, block_sites[offset], block_weights[offset], tessellation)


def _record(index: int, seed: int, sites: np.ndarray, weights: np.ndarray, tessellation: Tessellation) -> dict:
    return {
        "index": index,
        "seed": seed,
        "sites": np.round(sites, 4).tolist(),
        "weights": np.round(weights, 4).tolist(),
        "grains": [
            {
                "site": grain.site,
                "polygon": np.round(grain.polygon, 4).tolist(),
                "area": round(grain.area, 4),
                "centroid": [round(grain.centroid[0], 4), round(grain.centroid[1], 4)],
                "perimeter": round(grain.perimeter, 4),
                "neighbours": grain.neighbours,
                "shared": [round(length, 4) for length in grain.shared],
            }
            for grain in tessellation.grains
        ],
        "junctions": np.round(tessellation.junctions, 4).tolist(),
    }


def boundary_segments(tessellation: Tessellation) -> list[tuple[float, float, float, float]]:
    """Every edge between two grains, once (frame edges are not boundaries)."""
    segments = []
    for grain in tessellation.grains:
        following = np.roll(grain.polygon, -1, axis=0)
        for (x0, y0), (x1, y1), other in zip(grain.polygon, following, grain.edges):
            if other != FRAME and other > grain.site:
                segments.append((float(x0), float(y0), float(x1), float(y1)))
    return segments


def svg(sites: np.ndarray, weights: np.ndarray, size: int, width: int) -> str:
    """An SVG of the boundary network: one image (sites (K, 2)) or, for (n, K, 2), a grid like format=grid's."""
    sites, weights = np.asarray(sites), np.asarray(weights)
    single = sites.ndim == 2
    if single:
        sites, weights = sites[None], weights[None]
    count = len(sites)
    columns = int(np.ceil(np.sqrt(count)))
    pad = 0 if single else GRID_PAD
    total_w = columns * (size + pad) + pad
    total_h = int(np.ceil(count / columns)) * (size + pad) + pad
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
        f'viewBox="0 0 {total_w} {total_h}"><rect width="{total_w}" height="{total_h}" fill="#808080"/>'
    ]
    for i, tessellation in enumerate(tessellate(*scale(sites, weights, size / SIZE), size)):
        left, top = pad + (i % columns) * (size + pad), pad + (i // columns) * (size + pad)
        path = "".join(f"M{x0:.3f} {y0:.3f}L{x1:.3f} {y1:.3f}" for x0, y0, x1, y1 in boundary_segments(tessellation))
        parts.append(
            f'<g transform="translate({left} {top})"><rect width="{size}" height="{size}" fill="black"/>'
            f'<path d="{path}" stroke="white" stroke-width="{width}" fill="none"/></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def json_chunks(batch, sites: np.ndarray, weights: np.ndarray, size: int, width: int) -> Iterator[bytes]:
    """format=json, a record at a time (a large n never sits in memory whole as text)."""
    import json

    head = {k: v for k, v in batch.record().items() if k in ("model", "version", "seed", "start", "n", "grains")}
    yield (json.dumps({**head, "size": size, "width": width})[:-1] + ', "images": [').encode()
    for i, record in enumerate(describe(sites, weights, batch.seed, batch.start, size)):
        yield ((",\n" if i else "\n") + json.dumps(record, separators=(",", ":"))).encode()
    yield b"\n]}\n"
