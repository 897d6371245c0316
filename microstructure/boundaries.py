"""The boundary rule shared by the synthetic data, the partition generators and the service.

    >>> import numpy as np
    >>> from microstructure.boundaries import draw_boundaries
    >>> labels = np.array([[[1, 1, 2, 2]] * 4])               # two grains side by side
    >>> draw_boundaries(labels, width=2)[0, 0].tolist()
    [0, 255, 255, 0]

A pixel is boundary (255) when a neighbour at one of `neighbour_offsets(width)` belongs to another
grain; grains are black (0). At width 2 the neighbours are the 4-neighbours, so each boundary is one
pixel on either side of the grains' interface; other widths use a disc of radius width/2 (width 1:
the right and lower neighbours). A neighbour off the image compares with the pixel itself (no
boundary at the frame); with `periodic` the image wraps around.
"""

from __future__ import annotations

import numpy as np


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


def shifted(labels: np.ndarray, dy: int, dx: int, periodic: bool = False) -> np.ndarray:
    """labels[:, y + dy, x + dx] of (N, H, W) labels; off the image the pixel itself."""
    if periodic:
        return np.roll(labels, shift=(-dy, -dx), axis=(1, 2))
    height, width = labels.shape[1:]
    ys = np.clip(np.arange(height) + dy, 0, height - 1)
    xs = np.clip(np.arange(width) + dx, 0, width - 1)
    out = labels[:, ys][:, :, xs]
    # Where the clip folded an off-image neighbour back, compare with the pixel itself.
    invalid_y = (np.arange(height) + dy < 0) | (np.arange(height) + dy >= height)
    invalid_x = (np.arange(width) + dx < 0) | (np.arange(width) + dx >= width)
    invalid = invalid_y[:, None] | invalid_x[None, :]
    return np.where(invalid[None], labels, out)


def boundary_mask(labels: np.ndarray, width: int = 2, periodic: bool = False) -> np.ndarray:
    """bool (N, H, W): where the rule draws boundary on (N, H, W) grain labels."""
    labels = np.asarray(labels)
    boundary = np.zeros(labels.shape, bool)
    for dy, dx in neighbour_offsets(width):
        boundary |= shifted(labels, dy, dx, periodic) != labels
    return boundary


def draw_boundaries(labels: np.ndarray, width: int = 2, periodic: bool = False) -> np.ndarray:
    """uint8 (N, H, W) images, 255 on boundaries and 0 in grains, from (N, H, W) grain labels."""
    return np.where(boundary_mask(labels, width, periodic), np.uint8(255), np.uint8(0))
