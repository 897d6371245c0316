"""Statistics of grain-boundary images: grains, boundary fraction, two-point correlation, defects.

    >>> import numpy as np
    >>> from training.voronoi import VoronoiSpec, generate
    >>> from microstructure.stats import measure, summarise
    >>> images, _ = generate(VoronoiSpec(), 200, np.random.default_rng(0))
    >>> m = measure(images)                        # per-image and per-grain arrays
    >>> summary = summarise(m)                     # set-level figures, a JSON-ready dict
    >>> round(summary["defect_free_share"], 2), round(summary["solidity_mean"], 2)
    (1.0, 1.0)

Images are uint8 (N, 64, 64) with boundaries at 255, or floats in [-1, 1] with boundaries at +1; a
trailing channel axis of 1 is dropped. Everything is cut at the midpoint (`binarise`).

Grains are the 4-connected regions of non-boundary pixels; pockets smaller than MIN_GRAIN_AREA
count as boundary. Every boundary pixel then joins its nearest grain, so the grains tile the image
and their areas sum to it. Grains cut by the image border are kept, with their clipped area and
shape: a convex grain clipped by the square is still convex, and real and generated images are
clipped alike. A set without a single grain (all boundary) reports one grain of area 0 and
solidity 0 in its summary.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import skimage.measure
from scipy import fft
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull, QhullError

from microstructure.network import analyse

# Non-boundary pockets smaller than this (px) are boundary noise, not grains: a thick or blotchy
# line leaves 1-3 px holes. A 2x2 pocket is the smallest grain kept; with it the grain count of
# real Voronoi images matches their true count in 99.7% of images.
MIN_GRAIN_AREA = 4

# A grain is counted as convex when its solidity is at least this. Solidity here is pixel area over
# the pixel count of its digital convex hull, so a digitally convex grain has exactly 1 and real
# Voronoi grains have >= 0.95 in 99.9% of cases.
CONVEX_SOLIDITY = 0.95

# S2 is radially averaged out to this many px (half the image side): farther displacements have few
# pixel pairs and only along the diagonals.
S2_MAX_RADIUS = 32

# Image-to-image distances are taken between THUMBNAIL_BLOCK x THUMBNAIL_BLOCK block means (16x16
# for 64x64 images): robust to one-pixel jitter and small enough to search 20,000 training images.
THUMBNAIL_BLOCK = 4


@dataclasses.dataclass(frozen=True)
class Measures:
    """Per-image and per-grain statistics of one image set; grains are stored image after image."""

    boundary_fraction: np.ndarray  # (N,) share of boundary pixels
    grain_count: np.ndarray  # (N,) grains per image
    junctions: np.ndarray  # (N,) triple junctions per image
    dangling_ends: np.ndarray  # (N,) skeleton ends farther than network.MARGIN px from the border
    detached: np.ndarray  # (N,) boundary fragments detached from the network
    s2: np.ndarray  # (N, S2_MAX_RADIUS + 1) S2 of the boundary phase at r = 0, 1, ... px
    thumbnails: np.ndarray  # (N, (H / THUMBNAIL_BLOCK) ** 2) float32 block means of the boundary
    grain_area: np.ndarray  # (M,) px, boundary pixels included
    grain_solidity: np.ndarray  # (M,) area / digital convex hull area

    def __len__(self) -> int:
        return len(self.grain_count)

    @property
    def defect_free(self) -> np.ndarray:
        return (self.dangling_ends == 0) & (self.detached == 0)

    def subset(self, index: np.ndarray) -> Measures:
        """The measures of images `index` (repeats allowed), as if measured on their own."""
        index = np.asarray(index, int)
        starts = np.r_[0, np.cumsum(self.grain_count)][index]
        counts = self.grain_count[index]
        # Gather each chosen image's run of grains.
        grains = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
        per_image = {name: getattr(self, name)[index] for name in _PER_IMAGE}
        per_grain = {name: getattr(self, name)[grains] for name in _PER_GRAIN}
        return Measures(**per_image, **per_grain)

    @staticmethod
    def concat(parts: list[Measures]) -> Measures:
        names = [f.name for f in dataclasses.fields(Measures)]
        return Measures(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})


_PER_GRAIN = ("grain_area", "grain_solidity")
_PER_IMAGE = tuple(f.name for f in dataclasses.fields(Measures) if f.name not in _PER_GRAIN)


def binarise(images: np.ndarray) -> np.ndarray:
    """Boundary masks bool (N, H, W) from uint8 0..255, floats in [-1, 1] or bool, cut midway."""
    array = np.asarray(images)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"expected images (N, H, W) or (N, H, W, 1), got shape {array.shape}")
    if array.dtype == bool:
        return array
    if array.dtype == np.uint8:
        return array > 127  # to_unit(array) > 0, without a float copy of a large set
    if np.issubdtype(array.dtype, np.floating):
        return array > 0.0
    raise TypeError(f"expected uint8, bool or float images, got {array.dtype}")


def _regions(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(region labels, which labels are grains) of one boolean boundary image: 4-connected regions of
    non-boundary pixels, grains those of at least MIN_GRAIN_AREA pixels (label 0 never)."""
    grains, _ = ndi.label(~image)  # 4-connected by default
    keep = np.bincount(grains.ravel()) >= MIN_GRAIN_AREA
    keep[0] = False
    return grains, keep


def grain_counts(images: np.ndarray) -> np.ndarray:
    """Grains per image, int64 (N,): the number `segment` finds, without labelling every pixel.

    >>> from training.voronoi import VoronoiSpec, generate
    >>> images, labels = generate(VoronoiSpec(grains_min=7, grains_max=7), 3, np.random.default_rng(0))
    >>> grain_counts(images).tolist()
    [7, 7, 7]
    """
    return np.array([_regions(image)[1].sum() for image in binarise(images)], np.int64)


def segment(boundary: np.ndarray) -> np.ndarray:
    """Grain labels uint16 (N, H, W), 1..k per image, covering every pixel (all 0 if no grain)."""
    boundary = binarise(boundary)
    labels = np.zeros(boundary.shape, np.uint16)
    for image, out in zip(boundary, labels, strict=True):
        grains, keep = _regions(image)
        if not keep.any():
            continue
        renumber = np.where(keep, np.cumsum(keep), 0)
        grains = renumber[grains]
        # Every boundary pixel (and dropped pocket) joins its nearest grain.
        ys, xs = ndi.distance_transform_edt(grains == 0, return_distances=False, return_indices=True)
        out[...] = grains[ys, xs]
    return labels


def grain_ids(partition: np.ndarray) -> np.ndarray:
    """Grain labels uint16 (N, H, W) of a generator's partition (N, H, W) of label indices: each
    4-connected region of one index is a grain, numbered 1..k in raster order of its first pixel."""
    partition = np.asarray(partition)
    if partition.ndim != 3:
        raise ValueError(f"expected a partition (N, H, W), got shape {partition.shape}")
    labels = np.empty(partition.shape, np.uint16)
    for image, out in zip(partition, labels, strict=True):
        # background=-1 is no index: every pixel belongs to some region.
        out[...] = skimage.measure.label(image.astype(np.int32), background=-1, connectivity=1)
    return labels


def two_point_correlation(boundary: np.ndarray) -> np.ndarray:
    """Radially averaged S2(r) of the boundary phase (N, S2_MAX_RADIUS + 1); S2(0) = boundary share.

    S2(d) is the probability that two pixels d apart both lie on a boundary. Zero-padding the FFT by
    S2_MAX_RADIUS removes the wrap-around at the displacements used, and dividing by the number of
    pixel pairs at each displacement makes it the unbiased non-periodic estimate. Each radius r
    averages the displacements that round to it.
    """
    boundary = binarise(boundary)
    count, height, width = boundary.shape
    size = (height + S2_MAX_RADIUS, width + S2_MAX_RADIUS)
    dy = np.fft.fftfreq(size[0], 1 / size[0]).round().astype(int)[:, None]
    dx = np.fft.fftfreq(size[1], 1 / size[1]).round().astype(int)[None, :]
    radius = np.rint(np.hypot(dy, dx)).astype(int)
    pairs = (height - np.abs(dy)) * (width - np.abs(dx))
    inside = (radius <= S2_MAX_RADIUS) & (pairs > 0)
    # One matrix averages each radius bin: S2 = (autocorrelation / pairs) @ weights.
    weights = np.zeros((inside.sum(), S2_MAX_RADIUS + 1))
    weights[np.arange(inside.sum()), radius[inside]] = 1.0
    weights /= weights.sum(axis=0)
    weights /= pairs[inside][:, None]
    out = np.empty((count, S2_MAX_RADIUS + 1))
    for start in range(0, count, 256):
        block = boundary[start : start + 256].astype(np.float32)
        spectrum = fft.rfft2(block, s=size)
        autocorrelation = fft.irfft2(spectrum * spectrum.conj(), s=size)
        out[start : start + 256] = autocorrelation[:, inside] @ weights
    return out


def thumbnails(boundary: np.ndarray) -> np.ndarray:
    """Block means float32 (N, H * W / THUMBNAIL_BLOCK**2), the images' form for image distances."""
    boundary = binarise(boundary)
    count, height, width = boundary.shape
    b = THUMBNAIL_BLOCK
    blocks = boundary.reshape(count, height // b, b, width // b, b)
    return blocks.mean(axis=(2, 4), dtype=np.float32).reshape(count, -1)


def measure(images: np.ndarray) -> Measures:
    """Every statistic of every image and grain of a set."""
    boundary = binarise(images)
    labels = segment(boundary)
    network = analyse(boundary)
    area, solidity, count = _grains(labels)
    return Measures(
        boundary_fraction=boundary.mean(axis=(1, 2)),
        grain_count=count,
        junctions=network.junction_count,
        dangling_ends=network.end_count,
        detached=network.fragment_count,
        s2=two_point_correlation(boundary),
        thumbnails=thumbnails(boundary),
        grain_area=area,
        grain_solidity=solidity,
    )


def summarise(images: np.ndarray | Measures) -> dict:
    """Set-level figures of images (or of their `measure`), as a JSON-ready dict."""
    m = images if isinstance(images, Measures) else measure(images)
    area = m.grain_area if m.grain_area.size else np.zeros(1)
    solidity = m.grain_solidity if m.grain_solidity.size else np.zeros(1)
    return {
        "images": len(m),
        "grains_per_image": float(m.grain_count.mean()),
        "grain_area_mean": float(area.mean()),
        "grain_area_median": float(np.median(area)),
        "boundary_fraction": float(m.boundary_fraction.mean()),
        "solidity_mean": float(solidity.mean()),
        "convex_share": float((solidity >= CONVEX_SOLIDITY).mean()),
        "junctions_per_image": float(m.junctions.mean()),
        "dangling_ends_per_image": float(m.dangling_ends.mean()),
        "detached_per_image": float(m.detached.mean()),
        "defect_free_share": float(m.defect_free.mean()),
        "s2": [float(v) for v in m.s2.mean(axis=0)],
    }


def _grains(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(areas (M,), solidities (M,), grains per image (N,)) of labelled images, image by image."""
    count = labels.reshape(len(labels), -1).max(axis=1).astype(int)
    offsets = np.r_[0, np.cumsum(count)[:-1]]
    ids = np.where(labels > 0, labels + offsets[:, None, None], 0)  # unique over the set
    area = np.bincount(ids.ravel(), minlength=count.sum() + 1)[1:]

    # The hull of a grain is the hull of its row runs' end pixels; gather those, grain by grain.
    left = np.ones(ids.shape, bool)
    left[:, :, 1:] = ids[:, :, 1:] != ids[:, :, :-1]
    right = np.ones(ids.shape, bool)
    right[:, :, :-1] = ids[:, :, :-1] != ids[:, :, 1:]
    ends = (left | right) & (ids > 0)
    _, ys, xs = np.nonzero(ends)
    owner = ids[ends]
    order = np.argsort(owner, kind="stable")
    points = np.stack([ys[order], xs[order]], axis=1)
    bounds = np.searchsorted(owner[order], np.arange(1, count.sum() + 2))
    solidity = np.array([_solidity(points[a:b], n) for a, b, n in zip(bounds[:-1], bounds[1:], area, strict=True)])
    return area, solidity, count


def _solidity(points: np.ndarray, area: int) -> float:
    """Pixel area over the number of pixels inside the convex hull of the pixel centres `points`.

    The hull's vertices are pixel centres, so Pick's theorem counts the pixels inside it exactly:
    inside = A + B / 2 + 1 (A its area, B the pixel centres on its edges). A digitally convex grain
    scores exactly 1; skimage's regionprops solidity (which takes the hull of pixel corners) gives
    real Voronoi grains about 0.96 instead, and costs four times as long.
    """
    try:
        hull = ConvexHull(points)
    except QhullError:  # all on one line: a segment is convex
        return 1.0
    corners = points[hull.vertices]
    steps = np.abs(np.diff(np.vstack([corners, corners[:1]]), axis=0))
    on_edges = np.gcd(steps[:, 0], steps[:, 1]).sum()
    return float(area / (hull.volume + on_edges / 2 + 1))
