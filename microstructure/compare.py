"""Is a generated set statistically like the real one? Distances judged against real-vs-real floors.

    >>> import numpy as np
    >>> from training.voronoi import VoronoiSpec, generate
    >>> from microstructure.compare import compare
    >>> rng = np.random.default_rng(0)
    >>> real, real_floor, train, fake = (generate(VoronoiSpec(), 256, rng)[0] for _ in range(4))
    >>> report = compare(fake, real, real_floor, train=train)    # a JSON-ready dict
    >>> report["passed"], sorted(report["distances"]["s2_error"])
    (True, ['floor', 'floor_median', 'limit', 'pass', 'value'])

Each distance d(generated, real) is set beside its floor: the same distance between two disjoint
sets of real images of the same sizes. One real-vs-real pair is as noisy as the distance it judges
(for a scalar statistic, one such distance exceeds 1.5 times another in over a third of draws), so
the floor is the FLOOR_QUANTILE of the distance over FLOOR_SPLITS random splits of
real + real_floor into a set of the generated set's size and one of the real set's size; the
reports also give the median. A distance passes when it is at most TOLERANCE times its floor.

Distances, all 0 for identical sets and larger when worse:
- s2_error: ||S2_gen - S2_real|| / ||S2_real|| of the set-mean radial S2 curves;
- grain_area_w1: Wasserstein-1 between the grain-area distributions / mean real grain area;
- boundary_fraction_diff: |phi_gen - phi_real| / phi_real;
- grain_count_w1: Wasserstein-1 between the grains-per-image distributions, in grains;
- solidity_diff: |mean grain solidity gen - real|;
- defect_free_shortfall: how far the generated share of defect-free images falls below the real
  one (never negative: more defect-free images than real is no failure by itself; a generator that
  draws few boundaries fails the grain statistics instead). Its limit is at least SHARE_SLACK;
- diversity_loss: 1 - (mean distance between random pairs of generated images) / (the same among
  real images), or 0 when above 1: a collapsed generator scores near 1;
- memorisation (only with `train`): 1 - q(gen) / q(real), or 0 when above 1, where q is the
  MEMORISATION_QUANTILE of each image's distance to its nearest training image; `real` and
  `real_floor` must be held out from `train`. A generator that copies training images for a tenth
  or more of its samples scores near 1.
Image distances are root-mean-square differences of stats.thumbnails (4x4 block means).
"""

from __future__ import annotations

import numpy as np

from microstructure.stats import Measures, binarise, measure, summarise, thumbnails

TOLERANCE = 1.5  # a distance passes within this multiple of its real-vs-real floor
FLOOR_SPLITS = 256  # random real-vs-real splits behind each floor
FLOOR_QUANTILE = 0.99  # the floor is this quantile of the real-vs-real distances
# Shares move in steps of 1/n, and real Voronoi images are all defect-free (floor 0): allow a
# shortfall of 2 percentage points (5 of 256 images) however small the floor.
SHARE_SLACK = 0.02
DIVERSITY_PAIRS = 4096  # random image pairs behind each mean pairwise distance
MEMORISATION_QUANTILE = 0.1  # compare the closest tenth of each set to the training images
SCORE_CAP = 10.0  # a single distance adds at most this to the score
SEED = 0  # the splits and pairs are drawn from this seed, so a report is reproducible


def compare(
    generated: np.ndarray | Measures,
    real: np.ndarray | Measures,
    real_floor: np.ndarray | Measures,
    train: np.ndarray | None = None,
) -> dict:
    """Distances of generated from real, each beside its floor and verdict, as a JSON-ready dict.

    generated, real and real_floor are image arrays or their `stats.measure` (to measure a fixed
    real set once). real and real_floor must be disjoint and, with `train`, held out from it.
    real_floor should be at least as large as generated; when smaller, the floors are taken at its
    size and are somewhat lenient.
    """
    gen, ref, other = (_measured(x) for x in (generated, real, real_floor))
    if min(len(gen), len(ref), len(other)) < 2:
        raise ValueError("compare needs at least 2 images in each of generated, real, real_floor")
    pool = Measures.concat([ref, other])
    rng = np.random.default_rng(SEED)

    # Nearest-training-image distances, only when there is a training set to copy from.
    near_gen = near_pool = None
    if train is not None:
        train_thumbs = thumbnails(binarise(train))
        near_gen = nearest_distances(gen.thumbnails, train_thumbs)
        near_pool = nearest_distances(pool.thumbnails, train_thumbs)

    values = _distances(gen, ref, rng, near_gen, _take(near_pool, np.arange(len(ref))))

    # Real-vs-real: the same distances between disjoint random splits of the real images.
    size_b = len(ref)
    size_a = min(len(gen), len(pool) - size_b)
    floors = []
    for _ in range(FLOOR_SPLITS):
        order = rng.permutation(len(pool))
        a, b = order[:size_a], order[size_a : size_a + size_b]
        near_a, near_b = _take(near_pool, a), _take(near_pool, b)
        floors.append(_distances(pool.subset(a), pool.subset(b), rng, near_a, near_b))

    distances = {}
    for name, value in values.items():
        spread = np.array([f[name] for f in floors])
        floor = float(np.quantile(spread, FLOOR_QUANTILE))
        limit = TOLERANCE * floor
        if name == "defect_free_shortfall":
            limit = max(limit, SHARE_SLACK)
        distances[name] = {
            "value": value,
            "floor": floor,
            "floor_median": float(np.median(spread)),
            "limit": limit,
            "pass": bool(value <= limit),
        }
    failed = [name for name, d in distances.items() if not d["pass"]]
    return {
        "sizes": {
            "generated": len(gen),
            "real": len(ref),
            "real_floor": len(other),
            "train": 0 if train is None else len(train),
        },
        "generated": summarise(gen),
        "real": summarise(ref),
        "distances": distances,
        "passed": not failed,
        "failed": failed,
        "score": score(distances),
    }


def score(distances: dict) -> float:
    """One number to rank checkpoints by, lower is better: the mean of value / limit (each capped).

    Every distance within its limit gives a score <= 1.
    """
    ratios = []
    for d in distances.values():
        if d["limit"] > 0:
            ratios.append(min(d["value"] / d["limit"], SCORE_CAP))
        else:
            ratios.append(0.0 if d["value"] <= 0 else SCORE_CAP)
    return float(np.mean(ratios))


def nearest_distances(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """RMS distance (N,) from each query thumbnail to its nearest reference thumbnail."""
    queries = np.asarray(queries, np.float32)
    references = np.asarray(references, np.float32)
    reference_norms = (references**2).sum(axis=1)
    out = np.empty(len(queries), np.float32)
    # |q - r|^2 = |q|^2 + |r|^2 - 2 q.r, a block of queries at a time to bound memory.
    for start in range(0, len(queries), 512):
        block = queries[start : start + 512]
        squared = reference_norms[None, :] - 2.0 * block @ references.T
        out[start : start + 512] = squared.min(axis=1) + (block**2).sum(axis=1)
    return np.sqrt(np.maximum(out, 0.0) / queries.shape[1])


def mean_pairwise_distance(thumbs: np.ndarray, rng: np.random.Generator) -> float:
    """Mean RMS distance between DIVERSITY_PAIRS random pairs of different images of a set."""
    count = len(thumbs)
    if count < 2:
        return 0.0
    first = rng.integers(count, size=DIVERSITY_PAIRS)
    second = (first + rng.integers(1, count, size=DIVERSITY_PAIRS)) % count
    difference = thumbs[first] - thumbs[second]
    squared = np.einsum("ij,ij->i", difference, difference) / thumbs.shape[1]
    return float(np.sqrt(squared).mean())


def wasserstein_integers(u: np.ndarray, v: np.ndarray) -> float:
    """Wasserstein-1 distance between two samples of non-negative integers.

    Equal to scipy.stats.wasserstein_distance(u, v), but from cumulative histograms: two orders of
    magnitude faster, which matters for the hundreds of floor splits.
    """
    size = int(max(u.max(), v.max())) + 1
    cdf_u = np.cumsum(np.bincount(u, minlength=size)) / len(u)
    cdf_v = np.cumsum(np.bincount(v, minlength=size)) / len(v)
    return float(np.abs(cdf_u - cdf_v).sum())


def _distances(
    a: Measures,
    b: Measures,
    rng: np.random.Generator,
    near_a: np.ndarray | None = None,
    near_b: np.ndarray | None = None,
) -> dict[str, float]:
    """Every distance of set a from reference set b (see the module docstring)."""
    # A set without a single grain scores as if it had one grain of area 0 and solidity 0.
    area_a = a.grain_area if a.grain_area.size else np.zeros(1, int)
    solidity_a = a.grain_solidity if a.grain_solidity.size else np.zeros(1)
    s2_a, s2_b = a.s2.mean(axis=0), b.s2.mean(axis=0)
    phi_a, phi_b = a.boundary_fraction.mean(), b.boundary_fraction.mean()
    spread_a = mean_pairwise_distance(a.thumbnails, rng)
    spread_b = mean_pairwise_distance(b.thumbnails, rng)
    out = {
        "s2_error": np.linalg.norm(s2_a - s2_b) / np.linalg.norm(s2_b),
        "grain_area_w1": wasserstein_integers(area_a, b.grain_area) / b.grain_area.mean(),
        "boundary_fraction_diff": abs(phi_a - phi_b) / phi_b,
        "grain_count_w1": wasserstein_integers(a.grain_count, b.grain_count),
        "solidity_diff": abs(solidity_a.mean() - b.grain_solidity.mean()),
        "defect_free_shortfall": max(0.0, b.defect_free.mean() - a.defect_free.mean()),
        "diversity_loss": max(0.0, 1.0 - spread_a / spread_b),
    }
    if near_a is not None and near_b is not None:
        q_a = np.quantile(near_a, MEMORISATION_QUANTILE)
        q_b = np.quantile(near_b, MEMORISATION_QUANTILE)
        out["memorisation"] = max(0.0, 1.0 - q_a / q_b) if q_b > 0 else 0.0
    return {name: float(value) for name, value in out.items()}


def _measured(images: np.ndarray | Measures) -> Measures:
    return images if isinstance(images, Measures) else measure(images)


def _take(values: np.ndarray | None, index: np.ndarray) -> np.ndarray | None:
    return None if values is None else values[index]
