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
    junction_points = _junctions(points, tags, lengths)
    # Shoelace per cell: area, centroid, perimeter; each edge's length goes to the neighbour it faces.
    following = _following(points, lengths)
    inside = np.arange(points.shape[2]) < lengths[..., None]
    cross = (points[..., 0] * following[..., 1] - following[..., 0] * points[..., 1]) * inside
    area = 0.5 * cross.sum(axis=-1)
    safe = np.where(np.abs(area) > EPS, area, 1.0)
    centroid = ((points + following) * cross[..., None]).sum(axis=2) / (6.0 * safe[..., None])
    edge = np.hypot(*(following - points).transpose(3, 0, 1, 2)) * inside
    # One conversion to Python lists, then plain loops (a grain is a handful of numbers).
    areas, perimeters = np.abs(area).tolist(), edge.sum(axis=-1).tolist()
    centroids, all_tags, all_edges, all_lengths = centroid.tolist(), tags.tolist(), edge.tolist(), lengths.tolist()
    out = []
    for b in range(batch):
        grains = []
        for k in range(count):
            n = all_lengths[b][k]
            if n < 3 or areas[b][k] <= EPS:
                continue
            edge_tags = all_tags[b][k][:n]
            shared: dict[int, float] = {}
            for tag, length in zip(edge_tags, all_edges[b][k][:n]):
                if tag != FRAME and length > EPS:
                    shared[tag] = shared.get(tag, 0.0) + length
            neighbours = sorted(shared)
            grains.append(
                Grain(
                    site=k,
                    polygon=points[b, k, :n],
                    area=areas[b][k],
                    centroid=(centroids[b][k][0], centroids[b][k][1]),
                    perimeter=perimeters[b][k],
                    neighbours=neighbours,
                    shared=[shared[j] for j in neighbours],
                    edges=edge_tags,
                )
            )
        out.append(Tessellation(grains, junction_points[b]))
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

    Vertex v's tag names the edge from v to v + 1: FRAME, or the site on its other side. Cells are rows
    of flat arrays; each pass rewrites only the rows its half-plane actually cuts.
    """
    batch, count = weights.shape
    rows = batch * count
    square = np.array([[0.0, 0.0], [size, 0.0], [size, size], [0.0, size]])
    points = np.broadcast_to(square, (rows, 4, 2)).copy()
    tags = np.full((rows, 4), FRAME, np.int64)
    lengths = np.full(rows, 4, np.int64)
    norm = (sites**2).sum(axis=-1) - weights  # |s|^2 - w
    # Clip each cell by the other sites nearest first (in power distance): the first few passes make
    # it small, and later ones mostly find nothing to cut, which costs one cheap test.
    power = ((sites[:, :, None, :] - sites[:, None, :, :]) ** 2).sum(axis=-1) - weights[:, None, :]
    power[:, np.arange(count), np.arange(count)] = np.inf
    # A site that another beats at all four corners owns nothing (its half-plane misses the square),
    # and clipping by it would remove nothing that its winner does not: its cell starts empty.
    corner = ((square[None, None] - sites[:, :, None]) ** 2).sum(axis=-1) - weights[..., None]  # (B, K, 4)
    beaten = (corner[:, None, :, :] <= corner[:, :, None, :]).all(axis=-1)  # [b, j, i]: i beats j everywhere
    beaten[:, np.arange(count), np.arange(count)] = False
    lengths[beaten.any(axis=-1).reshape(rows)] = 0
    nearest = np.argsort(power, axis=-1, kind="stable")[..., : count - 1]  # (B, K, K - 1), never itself
    image = np.arange(batch)[:, None]
    for step in range(count - 1):
        j = nearest[..., step]  # (B, K): the site each cell is clipped by in this pass
        normal = (2.0 * (sites[image, j] - sites)).reshape(rows, 2)
        bound = (norm[image, j] - norm).reshape(rows)
        distance = np.einsum("nvc,nc->nv", points, normal) - bound[:, None]
        valid = np.arange(points.shape[1]) < lengths[:, None]
        cut = (valid & (distance > 0)).any(axis=1)
        if not cut.any():
            continue
        index = np.nonzero(cut)[0]
        new_points, new_tags, new_lengths = _clip(
            points[index], tags[index], lengths[index], distance[index], j.reshape(rows)[index]
        )
        width = max(points.shape[1], new_points.shape[1])
        points, tags = _widen(points, tags, width)
        points[index], tags[index] = _widen(new_points, new_tags, width)
        lengths[index] = new_lengths
    return points.reshape(batch, count, -1, 2), tags.reshape(batch, count, -1), lengths.reshape(batch, count)


def _widen(points, tags, width):
    extra = width - points.shape[1]
    if extra <= 0:
        return points, tags
    return np.pad(points, ((0, 0), (0, extra), (0, 0))), np.pad(tags, ((0, 0), (0, extra)), constant_values=FRAME)


def _clip(points, tags, lengths, d0, tag):
    """One Sutherland-Hodgman pass on rows of polygons: keep distance <= 0; new edges take the row's `tag`."""
    tag = tag[:, None]
    width = points.shape[1]
    rows = np.arange(len(points))[:, None]
    slot = np.arange(width)
    valid = slot < lengths[:, None]
    following = np.where(slot + 1 < lengths[:, None], slot + 1, 0)
    nxt = points[rows, following]
    d1 = d0[rows, following]
    keep = valid & (d0 <= 0)
    cross = valid & (((d0 < 0) & (d1 > 0)) | ((d1 < 0) & (d0 > 0)))
    # Leaving the half-plane (at v or between v and v + 1), the edge runs along the clipping line.
    keep_tag = np.where((d0 == 0) & (d1 > 0), tag, tags)
    t = np.where(cross, d0 / np.where(cross, d0 - d1, 1.0), 0.0)
    crossing = points + t[..., None] * (nxt - points)
    cross_tag = np.where(d0 < 0, tag, tags)
    # Interleave (vertex, crossing) per slot and pack the kept entries to the front of each row.
    both = np.stack([points, crossing], axis=2).reshape(len(points), 2 * width, 2)
    both_tags = np.stack([keep_tag, cross_tag], axis=2).reshape(len(points), 2 * width)
    mask = np.stack([keep, cross], axis=2).reshape(len(points), 2 * width)
    new_lengths = mask.sum(axis=1)
    order = np.argsort(~mask, axis=1, kind="stable")[:, : max(int(new_lengths.max()), 1)]
    return _merge_close(both[rows, order], both_tags[rows, order], new_lengths)


def _merge_close(points, tags, lengths):
    """Drop a vertex within EPS of the one before it (a clip through a vertex emits it twice)."""
    slot = np.arange(points.shape[1])
    rows = np.arange(len(points))[:, None]
    valid = slot < lengths[:, None]
    previous = np.maximum(np.where(slot > 0, slot - 1, lengths[:, None] - 1), 0)
    duplicate = valid & (np.abs(points - points[rows, previous]).max(axis=-1) < EPS) & (lengths[:, None] > 1)
    if not duplicate.any():
        return points, tags, lengths
    # The duplicate's predecessor ends a zero-length edge: it takes the duplicate's outgoing tag.
    tags = tags.copy()
    r, v = np.nonzero(duplicate)
    tags[r, previous[r, v]] = tags[r, v]
    keep = valid & ~duplicate
    order = np.argsort(~keep, axis=1, kind="stable")
    return points[rows, order], tags[rows, order], keep.sum(axis=1)


def _following(points, lengths):
    """Each vertex's successor around its polygon (rows are padded beyond their length)."""
    slot = np.arange(points.shape[2])
    index = np.where(slot + 1 < lengths[..., None], slot + 1, 0)
    return points[_rows(points), _cells(points), index]


def _junctions(points, tags, lengths) -> list[np.ndarray]:
    """Per image, the vertices where three or more grains meet: a vertex between two edges shared with
    two different grains. Each is listed once, by the grain of the lowest site among the three."""
    inside = np.arange(tags.shape[2]) < lengths[..., None]
    slot = np.arange(tags.shape[2])
    before = np.where(slot > 0, slot - 1, lengths[..., None] - 1)
    previous = tags[_rows(tags), _cells(tags), np.maximum(before, 0)]
    site = np.arange(tags.shape[1])[None, :, None]
    meet = inside & (tags != FRAME) & (previous != FRAME) & (tags != previous) & (site < tags) & (site < previous)
    return [points[b][meet[b]] for b in range(len(points))]


def _rows(array):
    return np.arange(array.shape[0])[:, None, None]


def _cells(array):
    return np.arange(array.shape[1])[None, :, None]
