"""The boundary network as a graph: skeleton, triple junctions, dangling ends, detached fragments.

    >>> import numpy as np
    >>> from microstructure.network import analyse
    >>> boundary = np.zeros((1, 64, 64), bool)
    >>> boundary[0, 31:33, :] = True               # one straight boundary across the image
    >>> boundary[0, 31:33, 20:26] = False          # ... with a gap in it
    >>> net = analyse(boundary)
    >>> net.end_count.tolist(), net.fragment_count.tolist(), net.junction_count.tolist()
    ([2], [0], [0])

Every function takes a stack of boolean boundary images (N, H, W) and works on the whole stack at
once; only the thinning itself runs image by image. In a planar Voronoi tessellation every
boundary ends on the image border or at a junction and the whole network hangs together, so two
things mark an image as not like one:

- a dangling end: an end point of the (spur-pruned) skeleton farther than MARGIN px from the border;
- a detached fragment: a connected piece of boundary (8-connected) that touches neither the image
  border nor the image's largest piece of boundary (its main network), and encloses no grain. A
  closed loop around a grain is a grain boundary even when it floats free, so it is not counted;
  a speck, a blob or a loose line is.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

# An end point this close to the border (in px from the outermost pixel row or column) is where a
# boundary leaves the image, not where it stops. 2 px lets a boundary fade or bend in its last two
# pixels, as a 2-3 px wide line drawn by a generator does; an end 3 px inside is visibly short.
MARGIN = 2

# A free branch shorter than this (px) hanging off a junction, or off the border margin, is a spur:
# thinning makes such twigs from bumps on a 2-3 px wide line. Longer free branches are real ends.
SPUR = 4

# A loop must enclose a pocket of at least this many px to count as a grain boundary; the same
# value as stats.MIN_GRAIN_AREA (repeated so this module stands alone; a test checks they agree).
MIN_ENCLOSED_AREA = 4

# Thinning erodes a line from any free end, and a 2 px wide line meeting the image edge at 45
# degrees looks like a free end to it: it is thinned away for tens of pixels. Replicating the edge
# pixels outward by this many px before thinning makes such lines run on past the edge, so their
# skeleton reaches it. (Without it about 8% of real Voronoi images show a false dangling end.)
_EDGE_PAD = 4

_PLANE = np.zeros((3, 3, 3), bool)  # 8-connectivity within each image, none across the stack
_PLANE[1] = True


@dataclasses.dataclass(frozen=True)
class Network:
    skeleton: np.ndarray  # bool (N, H, W): the skeleton after spur pruning
    ends: np.ndarray  # bool (N, H, W): dangling end pixels
    fragments: np.ndarray  # bool (N, H, W): pixels of detached boundary fragments
    end_count: np.ndarray  # int (N,): dangling ends per image
    fragment_count: np.ndarray  # int (N,): detached fragments per image
    junction_count: np.ndarray  # int (N,): triple junctions per image

    @property
    def defect_free(self) -> np.ndarray:
        """bool (N,): no dangling end and no detached fragment."""
        return (self.end_count == 0) & (self.fragment_count == 0)


def analyse(boundary: np.ndarray) -> Network:
    """Skeleton, junctions and defects of boolean boundary images (N, H, W)."""
    boundary = np.asarray(boundary, bool)
    raw = skeleton(boundary)
    pruned, ends = _prune(raw)
    fragments, fragment_count = detached_fragments(boundary)
    return Network(
        skeleton=pruned,
        ends=ends,
        fragments=fragments,
        end_count=ends.sum(axis=(1, 2)),
        fragment_count=fragment_count,
        junction_count=junction_count(pruned),
    )


def skeleton(boundary: np.ndarray) -> np.ndarray:
    """One-pixel-wide skeletons (Zhang-Suen thinning) of boundary images (N, H, W), edge-padded."""
    p = _EDGE_PAD
    out = np.zeros(boundary.shape, bool)
    for image, skel in zip(boundary, out, strict=True):
        skel[...] = skeletonize(np.pad(image, p, mode="edge"))[p:-p, p:-p]
    return out


def junction_count(skel: np.ndarray) -> np.ndarray:
    """Triple junctions per image: 8-connected clusters of skeleton pixels where >= 3 branches meet.

    A pixel is a branch point when its crossing number (0 -> 1 transitions around its 8 neighbours)
    is at least 3. Counting plain neighbours instead would also fire on every step of a staircase
    line, which has three neighbours but only two branches.
    """
    _, crossings = _neighbourhood(skel)
    _, count = _label_each(skel & (crossings >= 3))
    return count


def detached_fragments(boundary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pixel mask (N, H, W), count per image (N,)) of boundary pieces detached from the network."""
    labels, per_image = _label_each(boundary)
    total = int(per_image.sum())
    if total == 0:
        return np.zeros_like(boundary), per_image * 0
    owner = np.repeat(np.arange(len(boundary)), per_image)  # image of each component, ids 1..total
    sizes = np.bincount(labels.ravel(), minlength=total + 1)[1:]

    # Attached: touches the border, or is the largest piece of its image (the main network).
    rim = np.concatenate([labels[:, 0, :], labels[:, -1, :], labels[:, :, 0], labels[:, :, -1]], axis=1)
    attached = np.zeros(total + 1, bool)
    attached[np.unique(rim)] = True
    attached[0] = False
    order = np.lexsort((-sizes, owner))  # per image, largest first
    first = np.r_[True, owner[order][1:] != owner[order][:-1]]
    attached[1 + order[first]] = True

    # Of the rest, a closed loop around a grain is a grain boundary, not debris.
    detached = np.zeros(total + 1, bool)
    slices = ndi.find_objects(labels)
    for component in np.flatnonzero(~attached[1:]) + 1:
        piece = labels[slices[component - 1]] == component
        detached[component] = not _encloses_grain(piece)
    mask = detached[labels]
    return mask, np.bincount(owner[detached[1:]], minlength=len(boundary))


def _encloses_grain(piece: np.ndarray) -> bool:
    """Whether a (1, h, w) component mask surrounds a hole of at least MIN_ENCLOSED_AREA px."""
    # Pad so a hole can't touch the crop's edge; holes are 4-connected like grains.
    padded = np.pad(piece[0], 1)
    holes = ndi.binary_fill_holes(padded) & ~padded
    if not holes.any():
        return False
    hole_labels, _ = ndi.label(holes)
    return int(np.bincount(hole_labels.ravel())[1:].max()) >= MIN_ENCLOSED_AREA


def _prune(skel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pruned skeleton, dangling end pixels): remove spurs, then find the ends that remain."""
    interior = _border_distance(skel.shape[1:]) > MARGIN

    # Eat SPUR pixels from every free end inside the margin; spurs disappear entirely.
    eaten = skel.copy()
    for _ in range(SPUR):
        eaten &= ~(_end_points(eaten) & interior)

    # Grow the surviving branches back along the original skeleton to their real tips.
    sources = _end_points(eaten) & interior
    removed = skel & ~eaten
    grown = sources
    for _ in range(SPUR):
        grown = (_dilate(grown) & removed) | sources
    pruned = eaten | grown
    ends = grown & _end_points(skel) & interior
    return pruned, ends


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 dilation of every image of a stack (scipy's binary_dilation is 5x slower on stacks)."""
    height, width = mask.shape[1:]
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    out = mask.copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out |= padded[:, dy : dy + height, dx : dx + width]
    return out


def _end_points(skel: np.ndarray) -> np.ndarray:
    """Skeleton pixels with one branch (crossing number 1) or none (an isolated pixel)."""
    count, crossings = _neighbourhood(skel)
    return skel & ((crossings == 1) | (count == 0))


def _neighbourhood(skel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(neighbour count, crossing number) of every pixel of a stack; outside the image is empty."""
    height, width = skel.shape[1:]
    padded = np.pad(skel, ((0, 0), (1, 1), (1, 1)))
    # The 8 neighbours in cyclic order: N, NE, E, SE, S, SW, W, NW.
    steps = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]
    ring = [padded[:, 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in steps]
    count = np.zeros(skel.shape, np.uint8)
    crossings = np.zeros(skel.shape, np.uint8)
    for k in range(8):
        count += ring[k]
        crossings += ~ring[k] & ring[(k + 1) % 8]
    return count, crossings


def _label_each(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components of each image: (labels unique over the stack, count per image)."""
    labels, _ = ndi.label(mask, structure=_PLANE)
    # ndi.label numbers components in raster order, so each image's ids form one consecutive run.
    first = labels.reshape(len(mask), -1).max(axis=1)
    per_image = np.diff(np.r_[0, np.maximum.accumulate(first)])
    return labels, per_image


def _border_distance(shape: tuple[int, int]) -> np.ndarray:
    """Distance in px of every pixel from the outermost row or column (0 on the edge)."""
    ys, xs = np.indices(shape)
    return np.minimum.reduce([ys, xs, shape[0] - 1 - ys, shape[1] - 1 - xs])
