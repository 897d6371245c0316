"""Synthetic planar Voronoi microstructures: white grain boundaries on black grains.

    >>> from training.voronoi import VoronoiSpec, generate
    >>> images, labels = generate(VoronoiSpec(), count=4, rng=np.random.default_rng(1))
    >>> images.shape, images.dtype, labels.dtype
    ((4, 64, 64), dtype('uint8'), dtype('uint16'))

Each image is the Voronoi tessellation of 5-12 (by default) uniformly random seed points. Labels hold
the grain id (1..k) of every pixel; boundaries are drawn from them by microstructure.boundaries (at the
default width of 2 px a pixel is boundary exactly when one of its 4 neighbours belongs to another
grain, so each boundary is one pixel on either side of the bisector).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from microstructure.boundaries import draw_boundaries

# Images are generated in blocks so the (block, grains, H, W) distance array stays small.
_BLOCK = 128


@dataclasses.dataclass(frozen=True)
class VoronoiSpec:
    size: int = 64  # image side, px
    grains_min: int = 5  # fewest seed points per image
    grains_max: int = 12  # most seed points per image (inclusive)
    width: int = 2  # boundary width, px
    periodic: bool = False  # tessellate the torus so images tile

    def validate(self) -> None:
        if self.size < 8:
            raise ValueError(f"size must be at least 8 px, got {self.size}")
        if not 1 <= self.grains_min <= self.grains_max:
            raise ValueError(f"grains must satisfy 1 <= MIN <= MAX, got {self.grains_min} {self.grains_max}")
        if self.grains_max > 65535:
            raise ValueError("grains MAX must fit uint16 labels (<= 65535)")
        if not 1 <= self.width <= self.size // 4:
            raise ValueError(f"width must be between 1 and size/4 px, got {self.width}")


def _block(spec: VoronoiSpec, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    size = spec.size
    grains = rng.integers(spec.grains_min, spec.grains_max + 1, size=count)
    seeds = rng.uniform(0.0, size, size=(count, spec.grains_max, 2)).astype(np.float32)
    centres = np.arange(size, dtype=np.float32) + 0.5
    dy = centres[None, None, :, None] - seeds[:, :, 0, None, None]
    dx = centres[None, None, None, :] - seeds[:, :, 1, None, None]
    if spec.periodic:
        dy = np.abs(dy)
        dx = np.abs(dx)
        dy = np.minimum(dy, size - dy)
        dx = np.minimum(dx, size - dx)
    distance = dy * dy + dx * dx  # (count, grains_max, size, size)
    unused = np.arange(spec.grains_max)[None, :] >= grains[:, None]
    distance[unused] = np.inf
    labels = np.argmin(distance, axis=1).astype(np.uint16) + 1
    return draw_boundaries(labels, spec.width, spec.periodic), labels


def generate(spec: VoronoiSpec, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (count, size, size) 0/255, labels uint16 (count, size, size))."""
    spec.validate()
    images = np.empty((count, spec.size, spec.size), np.uint8)
    labels = np.empty((count, spec.size, spec.size), np.uint16)
    for start in range(0, count, _BLOCK):
        stop = min(start + _BLOCK, count)
        images[start:stop], labels[start:stop] = _block(spec, stop - start, rng)
    return images, labels
