"""Load microstructure datasets: a zip, a folder or one file of H5 files or images.

    >>> from training.loading import load
    >>> data = load("data/voronoi.zip")              # doctest: +SKIP
    >>> data.images.shape, data.mapping               # doctest: +SKIP
    ((20000, 64, 64, 1), '0..255 -> [-1, 1]')

    >>> from training.loading import scan
    >>> scan("upload.zip", LoadOptions(max_bytes=2**30, max_images=200_000)).fingerprint   # doctest: +SKIP

Every source ends as float32 (N, 64, 64, 1) in [-1, 1] with boundaries at +1. Zips are read in place,
never extracted. Anything wrong raises `DataError` naming the file and the reason, before any array
is returned; nothing is written. Sizes and counts are checked from what the files declare before
their data is read (training/sources.py). `scan` checks a dataset as `load` does and gives the same
figures and fingerprint without holding the images: its memory is bounded whatever the input.
TensorFlow is never imported here.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from microstructure.images import SIZE
from training.errors import DataError
from training.sources import CHUNK_BYTES, Limits, sources

DEFAULT_MAX_BYTES = 4 * 1024**3
DEFAULT_MAX_IMAGES = 1_000_000  # 16 GB as float32: well above what one machine trains on
PREVIEW = 16  # images a Summary keeps


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    key: str | None = None  # H5 dataset name; default the first dataset in each file
    tile: bool = False  # cut images larger than 64x64 into 64x64 tiles
    stride: int = SIZE  # tile stride, px
    invert: bool = False  # the data's boundaries are dark: flip before mapping
    max_bytes: int = DEFAULT_MAX_BYTES  # refuse sources whose uncompressed size is larger
    max_images: int = DEFAULT_MAX_IMAGES  # refuse sources of more 64x64 images (after tiling)


@dataclasses.dataclass(frozen=True)
class Dataset:
    images: np.ndarray  # float32 (N, 64, 64, 1) in [-1, 1], boundaries at +1
    mapping: str  # the detected value range and how it was mapped, e.g. "0..255 -> [-1, 1]"
    fingerprint: str  # sha256 of the normalised float32 array
    source_dtype: str  # dtype of the stored values
    source_range: tuple[float, float]  # min and max of the stored values
    files: int  # member files read


# Reading: bounded pieces of raw images, (n, 64, 64) in their stored dtype, with every check.


@dataclasses.dataclass
class _Tally:
    files: int = 0  # member files read


def _pieces(path: Path, options: LoadOptions, tally: _Tally):
    """(name, raw (n, 64, 64) images) in the dataset's order; counts and sizes checked before reading."""
    limits = Limits(options.max_bytes, options.max_images)
    shape, decoded, images = None, 0, 0
    for source in sources(path, options.key, limits):
        tally.files += 1
        if source.count == 0:
            continue
        # Before tiling, so a mixed folder is reported as such rather than as "pass --tile".
        if shape is not None and source.shape != shape[1]:
            raise DataError(f"{source.name}: image shape {source.shape} differs from {shape[0]}'s {shape[1]}")
        shape = shape or (source.name, source.shape)
        images += source.count * _tiles_per_image(source.shape, source.name, options)
        if images > options.max_images:
            raise DataError(f"{source.name}: {images} images so far, above the limit of {options.max_images}")
        for raw in source.chunks():
            decoded += raw.nbytes
            if decoded > options.max_bytes:
                raise DataError(f"{source.name}: decoded data is above the limit of {options.max_bytes} bytes")
            if raw.dtype.kind == "f" and not np.isfinite(raw).all():
                raise DataError(f"{source.name}: contains NaN or inf values")
            yield from ((source.name, tiles) for tiles in _tiles(raw, options))


def _tiles_per_image(shape: tuple[int, int], name: str, options: LoadOptions) -> int:
    height, width = shape
    if height < SIZE or width < SIZE:
        raise DataError(f"{name}: images are {height}x{width}, smaller than {SIZE}x{SIZE}")
    if (height, width) == (SIZE, SIZE):
        return 1
    if not options.tile:
        raise DataError(f"{name}: images are {height}x{width}, not {SIZE}x{SIZE}; pass --tile to cut them into tiles")
    if options.stride < 1:
        raise DataError(f"stride must be at least 1 px, got {options.stride}")
    return len(range(0, height - SIZE + 1, options.stride)) * len(range(0, width - SIZE + 1, options.stride))


def _tiles(stack: np.ndarray, options: LoadOptions):
    """64x64 pieces of (n, H, W) images, image by image, tile positions row by row; bounded batches."""
    if stack.shape[1:] == (SIZE, SIZE):
        yield stack
        return
    height, width = stack.shape[1:]
    ys, xs = range(0, height - SIZE + 1, options.stride), range(0, width - SIZE + 1, options.stride)
    corners = [(y, x) for y in ys for x in xs]
    step = max(1, CHUNK_BYTES // (SIZE * SIZE * stack.dtype.itemsize))
    for image in stack:
        for start in range(0, len(corners), step):
            yield np.stack([image[y : y + SIZE, x : x + SIZE] for y, x in corners[start : start + step]])


def _detect(dtype: np.dtype, low: float, high: float, path: Path) -> tuple[float, float, str]:
    """The stored range that maps to [-1, 1]: (zero, full scale, description)."""
    if dtype == np.bool_:
        return 0.0, 1.0, "bool -> [-1, 1]"
    if low < 0.0:
        if low >= -1.0 and high <= 1.0:
            return -1.0, 1.0, "-1..1 (kept)"
        raise DataError(f"{path}: values range {low}..{high}: negative values outside -1..1")
    if high <= 1.0:
        return 0.0, 1.0, "0..1 -> [-1, 1]"
    if high <= 255.0:
        return 0.0, 255.0, "0..255 -> [-1, 1]"
    if high <= 65535.0:
        return 0.0, 65535.0, "0..65535 -> [-1, 1]"
    raise DataError(f"{path}: values range {low}..{high}: above 65535, not an image range")


def load(path: str | Path, options: LoadOptions | None = None) -> Dataset:
    """Load, check and normalise a dataset; raise DataError on anything wrong."""
    options = options or LoadOptions()
    path = Path(path)
    tally, stacks, dtypes = _Tally(), [], set()
    for _, stack in _pieces(path, options, tally):
        stacks.append(stack)
        dtypes.add(stack.dtype)
    if not stacks:
        raise DataError(f"{path}: no images found (looked for .h5/.hdf5, .png and .tif files)")
    zero, full, mapping, dtype, low, high = _mapping(path, dtypes, stacks, options)

    # Normalise into one preallocated array, piece by piece, so peak memory stays near the result.
    count = sum(len(s) for s in stacks)
    images = np.empty((count, SIZE, SIZE, 1), np.float32)
    offset = 0
    while stacks:
        stack = stacks.pop(0)
        _normalise(stack, zero, full, options, out=images[offset : offset + len(stack), ..., 0])
        offset += len(stack)

    flat = images.reshape(count, -1)
    if np.all(flat.max(axis=1) == flat.min(axis=1)):
        raise DataError(f"{path}: every image is constant (no boundaries to learn)")
    fingerprint = hashlib.sha256(images.data.cast("B")).hexdigest()
    return Dataset(images, mapping, fingerprint, str(dtype), (low, high), tally.files)


@dataclasses.dataclass(frozen=True)
class Summary:
    """What `scan` finds: the figures of `load` without holding the images."""

    count: int
    mapping: str
    fingerprint: str  # the same as load(...).fingerprint
    source_dtype: str
    source_range: tuple[float, float]
    files: int
    preview: np.ndarray  # float32 (<= PREVIEW, 64, 64, 1): the first images as load returns them


def scan(path: str | Path, options: LoadOptions | None = None) -> Summary:
    """Check a dataset as `load` does, reading it twice in bounded pieces (sources.MEMORY_BOUND)."""
    options = options or LoadOptions()
    path = Path(path)

    # First pass: dtypes and the value range, which decide the mapping.
    tally, dtypes, low, high, count = _Tally(), set(), np.inf, -np.inf, 0
    for _, stack in _pieces(path, options, tally):
        dtypes.add(stack.dtype)
        low, high, count = min(low, float(stack.min())), max(high, float(stack.max())), count + len(stack)
    if not count:
        raise DataError(f"{path}: no images found (looked for .h5/.hdf5, .png and .tif files)")
    zero, full, mapping, dtype, low, high = _mapping(path, dtypes, [np.array([low, high])], options)

    # Second pass: normalise piece by piece into the fingerprint.
    digest, varying, preview = hashlib.sha256(), False, list[np.ndarray]()
    for _, stack in _pieces(path, options, _Tally()):
        images = _normalise(stack, zero, full, options, out=np.empty(stack.shape, np.float32))
        digest.update(images.data.cast("B"))
        flat = images.reshape(len(images), -1)
        varying = varying or bool(np.any(flat.max(axis=1) != flat.min(axis=1)))
        preview.extend(np.expand_dims(images[: PREVIEW - len(preview)], -1))
    if not varying:
        raise DataError(f"{path}: every image is constant (no boundaries to learn)")
    return Summary(count, mapping, digest.hexdigest(), str(dtype), (low, high), tally.files, np.stack(preview))


def _mapping(path: Path, dtypes: set, stacks: list[np.ndarray], options: LoadOptions):
    if len(dtypes) > 1:
        raise DataError(f"{path}: files mix dtypes {sorted(map(str, dtypes))}")
    dtype = next(iter(dtypes))
    low = min(float(s.min()) for s in stacks)
    high = max(float(s.max()) for s in stacks)
    zero, full, mapping = _detect(dtype, low, high, path)
    return zero, full, mapping + (", inverted" if options.invert else ""), dtype, low, high


def _normalise(stack: np.ndarray, zero: float, full: float, options: LoadOptions, out: np.ndarray) -> np.ndarray:
    """Stored values to [-1, 1] in `out` (float32), elementwise: the same bytes whatever the pieces."""
    scale = 2.0 / (full - zero)
    np.multiply(stack, scale, out=out, casting="unsafe")
    out -= zero * scale + 1.0
    if options.invert:
        np.negative(out, out=out)
    return out
