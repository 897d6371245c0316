"""Write synthetic Voronoi datasets in the original project's format, or as one labelled H5 file.

    python -m training dataset --out data/voronoi.zip --count 20000 --seed 1
    python -m training dataset --out data/voronoi.h5 --format h5 --count 1000 --seed 2

The zip holds `Voronoi_micro_imgs/voronoi_00000.h5`, ... each with one dataset `images` shaped
(64, 64, K), channels-last, uint8 0/255. The same arguments give byte-identical files.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import h5py
import numpy as np

from training.files import atomic_path
from training.voronoi import VoronoiSpec, generate

ZIP_FOLDER = "Voronoi_micro_imgs"
# A fixed timestamp keeps zips byte-identical across runs.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _h5_bytes(images: np.ndarray) -> bytes:
    """One in-memory H5 file holding `images` as the dataset "images"."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", libver="earliest") as handle:
        handle.create_dataset("images", data=images)
    return buffer.getvalue()


def _spec_attrs(spec: VoronoiSpec, seed: int, count: int) -> dict:
    return {
        "generator": "microgan planar Voronoi",
        "seed": seed,
        "count": count,
        "size": spec.size,
        "grains_min": spec.grains_min,
        "grains_max": spec.grains_max,
        "width": spec.width,
        "periodic": spec.periodic,
    }


def write_zip(out: Path, spec: VoronoiSpec, count: int, seed: int, per_file: int = 100, progress=None) -> None:
    """Write `count` images as a zip of H5 files of `per_file` images each (the last may hold fewer)."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if per_file < 1:
        raise ValueError(f"per-file must be at least 1, got {per_file}")
    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for index, start in enumerate(range(0, count, per_file)):
                images, _ = generate(spec, min(per_file, count - start), rng)
                stack = np.ascontiguousarray(np.moveaxis(images, 0, -1))  # (H, W, K)
                data = _h5_bytes(stack)
                info = zipfile.ZipInfo(f"{ZIP_FOLDER}/voronoi_{index:05d}.h5", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data, compresslevel=1)
                if progress:
                    progress(len(images))


def write_h5(out: Path, spec: VoronoiSpec, count: int, seed: int, progress=None) -> None:
    """Write one H5 file with `images` (N, H, W) uint8, `labels` (N, H, W) uint16 and the spec as attributes."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w", libver="earliest") as handle:
            images = handle.create_dataset("images", (count, spec.size, spec.size), np.uint8)
            labels = handle.create_dataset("labels", (count, spec.size, spec.size), np.uint16)
            for start in range(0, count, 1000):
                block_images, block_labels = generate(spec, min(1000, count - start), rng)
                images[start : start + len(block_images)] = block_images
                labels[start : start + len(block_labels)] = block_labels
                if progress:
                    progress(len(block_images))
            for key, value in _spec_attrs(spec, seed, count).items():
                handle.attrs[key] = value
