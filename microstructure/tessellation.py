"""Exact geometry of Laguerre (power-diagram) tessellations clipped to the image square; no TensorFlow.

    >>> import numpy as np
    >>> from microstructure.tessellation import tessellate, rasterise
    >>> sites = np.array([[[16.0, 32.0], [48.0, 32.0]]])      # one image, two sites (x, y) px, y down
    >>> weights = np.zeros((1, 2))                              # px^2
    >>> (image,) = tessellate(sites, weights, size=64)
    >>> [(g.site, g.area, g.neighbours, g.shared) for g in image.grains]
    [(0, 2048.0, [1], [64.0]), (1, 2048.0, [0], [64.0])]
    >>> rasterise(sites[0], weights[0], size=64).shape          # the site owning every pixel
    (64, 64)

Point p belongs to the site k with the smallest |p - s_k|^2 - w_k (the convention of the laguerre
generator's `partition` signature: sites in pixels, weights in pixels squared). A grain is the image
square clipped by one half-plane per other site, so its polygon is exact and convex (vertices (x, y)
counter-clockwise for x right and y up, so clockwise on screen). A site whose cell misses the image
is not a grain. The clipping runs for every cell of every image at once (numpy, Sutherland-Hodgman
on padded vertex arrays), so a batch costs a few array passes per site. Geometry at another
resolution is the same tessellation scaled (`scale`): the picture drawn at 512 px is the 64 px one,
finer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

EPS = 1e-9  # px: shorter edges and smaller areas are degenerate (grains touching at a point, or empty)
FRAME = -1  # the tag of an edge on the image frame (other edges carry the neighbouring site's index)


@dataclasses.dataclass(frozen=True)
class Grain:
    site: int  # index of its site
    polygon: np.ndarray  # (V, 2) vertices (x, y) in px, in order around the grain
    area: float  # px^2
    centroid: tuple[float, float]  # (x, y) px
    perimeter: float  # px, frame edges included
    neighbours: list[int]  # sites of the grains it shares an edge with, ascending
    shared: list[float]  # px: length of the edge shared with each neighbour, in the same order
    edges: list[int]  # per polygon edge (vertex v to v + 1): the site on its other side, or FRAME


@dataclasses.dataclass(frozen=True)
class Tessellation:
    grains: list[Grain]  # the sites that own part of the image, by site index
    junctions: np.ndarray  # (J, 2) points (x, y) px where three or more grains meet


def scale(sites: np.ndarray, weights: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """The same tessellation in pixels of an image `factor` times larger."""
    return np.asarray(sites, np.float64) * factor, np.asarray(weights, np.float64) * factor**2


def tessellate(sites: np.ndarray, weights: np.ndarray, size: float) -> list[Tessellation]:
    """Grains and junctions of each image: sites (B, K, 2) and weights (B, K) in px, square [0, size]^2."""
    sites, weights = np.asarray(sites, np.float64), np.asarray(weights, np.float64)
    if sites.ndim != 3 or sites.shape[-1] != 2 or weights.shape != sites.shape[:2]:
        raise ValueError(f"expected sites (B, K, 2) and weights (B, K), got {sites.shape} and {weights.shape}")
    batch, count = weights.shape
    points, tags, lengths = _clip_all(sites, weights, size)
    # Shoelace per cell: area, centroid, perimeter; each edge's length goes to the neighbour it faces.
    following = _following(points, lengths)
    inside = np.arange(points.shape[2]) < lengths[..., None]
    cross = (points[..., 0] * following[..., 1] - following[..., 0] * points[..., 1]) * inside
    area = 0.5 * cross.sum(axis=-1)
    safe = np.where(np.abs(area) > EPS, area, 1.0)
    centroid = ((points + following) * cross[..., None]).sum(axis=2) / (6.0 * safe[..., None])
    edge = np.hypot(*(following - points).transpose(3, 0, 1, 2)) * inside
    out = []
    for b in range(batch):
        grains = []
        for k in range(count):
            n = lengths[b, k]
            if n < 3 or abs(area[b, k]) <= EPS:
                continue
            shared: dict[int, float] = {}
            edge_tags = tags[b, k, :n].tolist()
            for tag, length in zip(edge_tags, edge[b, k, :n].tolist()):
                if tag != FRAME and length > EPS:
                    shared[tag] = shared.get(tag, 0.0) + length
            neighbours = sorted(shared)
            grains.append(
                Grain(
                    site=k,
                    polygon=points[b, k, :n].copy(),
                    area=float(abs(area[b, k])),
                    centroid=(float(centroid[b, k, 0]), float(centroid[b, k, 1])),
                    perimeter=float(edge[b, k, :n].sum()),
                    neighbours=neighbours,
                    shared=[shared[j] for j in neighbours],
                    edges=edge_tags,
                )
            )
        out.append(Tessellation(grains, _junctions(grains)))
    return out


def rasterise(sites: np.ndarray, weights: np.ndarray, size: int, rows_per_block: int = 64) -> np.ndarray:
    """int32 (size, size): the site owning each pixel centre (x + 0.5, y + 0.5) of one image."""
    sites, weights = np.asarray(sites, np.float64), np.asarray(weights, np.float64)
    centres = np.arange(size) + 0.5
    # |p - s|^2 - w = |p|^2 - 2 p.s + |s|^2 - w: drop |p|^2 (the same for every site).
    offset = (sites**2).sum(axis=-1) - weights
    across = -2.0 * centres[:, None] * sites[None, :, 0] + offset[None, :]  # (W, K)
    labels = np.empty((size, size), np.int32)
    for top in range(0, size, rows_per_block):
        down = -2.0 * centres[top : top + rows_per_block, None] * sites[None, :, 1]  # (H', K)
        labels[top : top + len(down)] = (down[:, None, :] + across[None, :, :]).argmin(axis=-1)
    return labels


def _clip_all(sites: np.ndarray, weights: np.ndarray, size: float):
    """Every cell of every image clipped from the square: points (B, K, V, 2), edge tags (B, K, V), lengths (B, K).

    Vertex v's tag names the edge from v to v + 1: FRAME, or the site on its other side.
    """
    batch, count = weights.shape
    square = np.array([[0.0, 0.0], [size, 0.0], [size, size], [0.0, size]])
    points = np.broadcast_to(square, (batch, count, 4, 2)).copy()
    tags = np.full((batch, count, 4), FRAME, np.int64)
    lengths = np.full((batch, count), 4, np.int64)
    norm = (sites**2).sum(axis=-1) - weights  # |s|^2 - w
    cells = np.arange(count)
    for j in range(count):
        # Cell i keeps 2 p.(s_j - s_i) <= (|s_j|^2 - w_j) - (|s_i|^2 - w_i); cell j itself is not clipped.
        normal = 2.0 * (sites[:, j : j + 1, :] - sites)  # (B, K, 2)
        bound = norm[:, j : j + 1] - norm  # (B, K)
        bound[:, j] = np.inf
        points, tags, lengths = _clip(points, tags, lengths, normal, bound, j, cells)
    return points, tags, lengths


def _clip(points, tags, lengths, normal, bound, tag, cells):
    """One Sutherland-Hodgman pass on all polygons: keep normal.p <= bound; new edges take `tag`."""
    width = points.shape[2]
    valid = np.arange(width) < lengths[..., None]
    nxt = _following(points, lengths)
    d0 = np.einsum("bkvc,bkc->bkv", points, normal) - bound[..., None]
    d1 = np.einsum("bkvc,bkc->bkv", nxt, normal) - bound[..., None]
    d0 = np.where(np.isfinite(bound)[..., None], d0, -1.0)  # an unclipped cell keeps everything
    d1 = np.where(np.isfinite(bound)[..., None], d1, -1.0)
    keep = valid & (d0 <= 0)
    cross = valid & (((d0 < 0) & (d1 > 0)) | ((d1 < 0) & (d0 > 0)))
    # Leaving the half-plane (at v or between v and v + 1), the edge runs along the clipping line.
    keep_tag = np.where((d0 == 0) & (d1 > 0), tag, tags)
    t = np.where(cross, d0 / np.where(cross, d0 - d1, 1.0), 0.0)
    crossing = points + t[..., None] * (nxt - points)
    cross_tag = np.where(d0 < 0, tag, tags)
    # Interleave (vertex, crossing) per slot and pack the kept entries to the front of each row.
    both = np.stack([points, crossing], axis=3).reshape(*points.shape[:2], 2 * width, 2)
    both_tags = np.stack([keep_tag, cross_tag], axis=3).reshape(*tags.shape[:2], 2 * width)
    mask = np.stack([keep, cross], axis=3).reshape(*keep.shape[:2], 2 * width)
    order = np.argsort(~mask, axis=-1, kind="stable")
    new_lengths = mask.sum(axis=-1)
    top = max(int(new_lengths.max()), 1)
    order = order[..., :top]
    points = np.take_along_axis(both, order[..., None].repeat(2, axis=-1), axis=2)
    tags = np.take_along_axis(both_tags, order, axis=2)
    return _merge_close(points, tags, new_lengths)


def _following(points, lengths):
    """Each vertex's successor around its polygon (rows are padded beyond their length)."""
    slot = np.arange(points.shape[2])
    index = np.where(slot + 1 < lengths[..., None], slot + 1, 0)
    return np.take_along_axis(points, index[..., None].repeat(2, axis=-1), axis=2)


def _merge_close(points, tags, lengths):
    """Drop a vertex within EPS of the one before it (a clip through a vertex emits it twice)."""
    width = points.shape[2]
    slot = np.arange(width)
    valid = slot < lengths[..., None]
    previous = np.where(slot > 0, slot - 1, lengths[..., None] - 1)
    before = np.take_along_axis(points, np.maximum(previous, 0)[..., None].repeat(2, axis=-1), axis=2)
    duplicate = valid & (np.abs(points - before).max(axis=-1) < EPS) & (lengths[..., None] > 1)
    if not duplicate.any():
        return points, tags, lengths
    # The duplicate's predecessor ends a zero-length edge: it takes the duplicate's outgoing tag.
    tags = tags.copy()
    b, k, v = np.nonzero(duplicate)
    tags[b, k, previous[b, k, v]] = tags[b, k, v]
    keep = valid & ~duplicate
    order = np.argsort(~keep, axis=-1, kind="stable")
    return (
        np.take_along_axis(points, order[..., None].repeat(2, axis=-1), axis=2),
        np.take_along_axis(tags, order, axis=2),
        keep.sum(axis=-1),
    )


def _junctions(grains: list[Grain], decimals: int = 6) -> np.ndarray:
    meeting: dict[tuple[float, float], set[int]] = {}
    for grain in grains:
        for x, y in grain.polygon.tolist():
            meeting.setdefault((round(x, decimals), round(y, decimals)), set()).add(grain.site)
    points = [point for point, owners in meeting.items() if len(owners) >= 3]
    return np.array(sorted(points), np.float64).reshape(-1, 2)
