"""Synthetic planar Voronoi microstructures: white grain boundaries on black grains.

    >>> from training.voronoi import VoronoiSpec, generate
    >>> images, labels = generate(VoronoiSpec(), count=4, rng=np.random.default_rng(1))
    >>> images.shape, images.dtype, labels.dtype
    ((4, 64, 64), dtype('uint8'), dtype('uint16'))

Each image is the Voronoi tessellation of 5-12 (by default) uniformly random seed points. Labels hold
the grain id (1..k) of every pixel. At the default width of 2 px a pixel is boundary exactly when one
of its 4 neighbours belongs to another grain, so each boundary is one pixel on either side of the
bisector; other widths use a disc of radius width/2 (width 1: the right and lower neighbours).
"""

from __future__ import annotations

import dataclasses

import numpy as np

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


def neighbour_offsets(width: int) -> list[tuple[int, int]]:
    """The (dy, dx) neighbours a pixel is compared with: boundary when any holds another grain."""
    if width == 1:
        return [(0, 1), (1, 0)]
    radius = width / 2
    r = int(np.floor(radius))
    return [
        (dy, dx)
        for dy in range(-r, r + 1)
        for dx in range(-r, r + 1)
        if (dy, dx) != (0, 0) and dy * dy + dx * dx <= radius * radius
    ]


def _shifted(labels: np.ndarray, dy: int, dx: int, periodic: bool) -> np.ndarray:
    """labels[y + dy, x + dx]; off the image the pixel compares with itself (no boundary)."""
    if periodic:
        return np.roll(labels, shift=(-dy, -dx), axis=(1, 2))
    size = labels.shape[1]
    ys = np.clip(np.arange(size) + dy, 0, size - 1)
    xs = np.clip(np.arange(size) + dx, 0, size - 1)
    out = labels[:, ys][:, :, xs]
    # Where the clip folded an off-image neighbour back, compare with the pixel itself.
    invalid_y = (np.arange(size) + dy < 0) | (np.arange(size) + dy >= size)
    invalid_x = (np.arange(size) + dx < 0) | (np.arange(size) + dx >= size)
    invalid = invalid_y[:, None] | invalid_x[None, :]
    return np.where(invalid[None], labels, out)


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
    boundary = np.zeros(labels.shape, bool)
    for oy, ox in neighbour_offsets(spec.width):
        boundary |= _shifted(labels, oy, ox, spec.periodic) != labels
    return np.where(boundary, np.uint8(255), np.uint8(0)), labels


def generate(spec: VoronoiSpec, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (count, size, size) 0/255, labels uint16 (count, size, size))."""
    spec.validate()
    images = np.empty((count, spec.size, spec.size), np.uint8)
    labels = np.empty((count, spec.size, spec.size), np.uint16)
    for start in range(0, count, _BLOCK):
        stop = min(start + _BLOCK, count)
        images[start:stop], labels[start:stop] = _block(spec, stop - start, rng)
    return images, labels
