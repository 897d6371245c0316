"""Conditions a generator can be asked for, taken from the data itself: grains per training image.

    counts = grain_counts(load(path), path)       # int64 (N,), cached beside the dataset
    record = grain_record(counts)                 # {"min", "max", "histogram"} for the run and card

Counts come from microstructure.stats.grain_counts (the segmentation evaluation uses), so any dataset
works, user uploads included. They are computed once per dataset and kept in a file beside it named
by the dataset's fingerprint (`<dataset>.grains-<fingerprint>.npy`), so a changed dataset or other
load options never reuse stale counts; where the dataset's folder is read-only they are recomputed
each time (a few seconds for 20,000 images).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from microstructure.stats import grain_counts as measure_counts
from training.files import atomic_path

if TYPE_CHECKING:
    from training.loading import Dataset

CONDITIONS = ("none", "grains")
_CHUNK = 4096


def cache_path(dataset_path: str | Path, fingerprint: str) -> Path:
    path = Path(dataset_path)
    return path.with_name(f"{path.name}.grains-{fingerprint[:16]}.npy")


def grain_counts(data: Dataset, dataset_path: str | Path) -> np.ndarray:
    """Grains in each image of `data` (loaded from `dataset_path`), at least 1 each."""
    cached = cache_path(dataset_path, data.fingerprint)
    if cached.exists():
        counts = np.load(cached)
        if counts.shape == (len(data.images),):
            return counts
    counts = np.concatenate([measure_counts(data.images[i : i + _CHUNK]) for i in range(0, len(data.images), _CHUNK)])
    counts = np.maximum(counts, 1)  # an image all boundary is one grain for the condition
    try:
        with atomic_path(cached) as tmp, open(tmp, "wb") as out:
            np.save(out, counts)
    except OSError as error:
        warnings.warn(f"grain counts not cached beside the dataset ({error.strerror})", stacklevel=2)
    return counts


def grain_record(counts: np.ndarray) -> dict:
    """The trained range and histogram of grain counts, as stored in config.json and the model card.

    >>> grain_record(np.array([5, 6, 6, 8]))
    {'min': 5, 'max': 8, 'histogram': {'5': 1, '6': 2, '8': 1}}
    """
    values, frequency = np.unique(counts, return_counts=True)
    return {
        "min": int(values.min()),
        "max": int(values.max()),
        "histogram": {str(int(v)): int(f) for v, f in zip(values, frequency, strict=True)},
    }


def cumulative(record: dict, most: int) -> np.ndarray:
    """P(count <= c) for c = 0..most, float32, from a grain record's histogram."""
    frequency = np.zeros(most + 1, np.float64)
    for value, n in record["histogram"].items():
        frequency[int(value)] = n
    return (np.cumsum(frequency) / frequency.sum()).astype(np.float32)
