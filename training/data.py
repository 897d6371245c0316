"""Load microstructure datasets: a zip, a folder or one file of H5 files or images.

    >>> from training.data import load
    >>> data = load("data/voronoi.zip")              # doctest: +SKIP
    >>> data.images.shape, data.mapping               # doctest: +SKIP
    ((20000, 64, 64, 1), '0..255 -> [-1, 1]')

Every source ends as float32 (N, 64, 64, 1) in [-1, 1] with boundaries at +1. Zips are read in place,
never extracted. Anything wrong raises `DataError` naming the file and the reason, before any array
is returned; nothing is written. TensorFlow is imported only by `make_dataset`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from pathlib import Path, PurePosixPath

import h5py
import numpy as np
from PIL import Image, UnidentifiedImageError

from training.errors import DataError

SIZE = 64
DEFAULT_MAX_BYTES = 4 * 1024**3
H5_SUFFIXES = {".h5", ".hdf5", ".hdf"}
IMAGE_SUFFIXES = {".png", ".tif", ".tiff"}


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    key: str | None = None  # H5 dataset name; default the first dataset in each file
    tile: bool = False  # cut images larger than 64x64 into 64x64 tiles
    stride: int = SIZE  # tile stride, px
    invert: bool = False  # the data's boundaries are dark: flip before mapping
    max_bytes: int = DEFAULT_MAX_BYTES  # refuse sources whose uncompressed size is larger


@dataclasses.dataclass(frozen=True)
class Dataset:
    images: np.ndarray  # float32 (N, 64, 64, 1) in [-1, 1], boundaries at +1
    mapping: str  # the detected value range and how it was mapped, e.g. "0..255 -> [-1, 1]"
    fingerprint: str  # sha256 of the normalised float32 array
    source_dtype: str  # dtype of the stored values
    source_range: tuple[float, float]  # min and max of the stored values
    files: int  # member files read


# Reading sources: each yields (name, raw array) with the raw array (N, H, W) in its stored dtype.


def _safe_member(name: str, source: Path) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"{source}: zip entry {name!r} has an absolute path or '..'; refusing it")
    return not name.endswith("/") and not any(p.startswith(("__MACOSX", ".")) for p in path.parts)


def _h5_arrays(handle: h5py.File, name: str, key: str | None, max_bytes: int) -> np.ndarray:
    if key is not None:
        if key not in handle or not isinstance(handle[key], h5py.Dataset):
            raise DataError(f"{name}: no dataset named {key!r}")
        dataset = handle[key]
    else:
        found = []
        handle.visititems(lambda _, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
        if not found:
            raise DataError(f"{name}: H5 file holds no dataset")
        dataset = found[0]
    # A compressed dataset can be far larger than its file: check before reading it.
    if dataset.size * dataset.dtype.itemsize > max_bytes:
        raise DataError(
            f"{name}: dataset {dataset.name!r} is {dataset.size * dataset.dtype.itemsize} bytes "
            f"uncompressed, above the limit of {max_bytes}"
        )
    return _as_stack(dataset[()], name)


def _as_stack(array: np.ndarray, name: str) -> np.ndarray:
    """Bring an accepted H5 shape to (N, H, W)."""
    if array.dtype.kind not in "biuf":
        raise DataError(f"{name}: unsupported dtype {array.dtype}")
    if array.ndim == 2:
        return array[None]
    if array.ndim == 3:
        # (H, W, K) channels-last as in the original data, unless it reads as (N, H, W).
        if array.shape[0] == array.shape[1]:
            return np.moveaxis(array, -1, 0)
        if array.shape[1] == array.shape[2]:
            return array
    if array.ndim == 4 and array.shape[-1] == 1:
        return array[..., 0]
    raise DataError(f"{name}: unsupported shape {array.shape}; expected (64,64), (64,64,K), (N,64,64) or (N,64,64,1)")


def _read_h5(data: bytes | Path, name: str, options: LoadOptions) -> np.ndarray:
    try:
        source = io.BytesIO(data) if isinstance(data, bytes) else data
        with h5py.File(source, "r") as handle:
            return _h5_arrays(handle, name, options.key, options.max_bytes)
    except DataError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as error:
        raise DataError(f"{name}: corrupt or unreadable H5 file ({error})") from None


def _read_image(data: bytes | Path, name: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            frames = []
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                frame = image
                if frame.mode in ("RGB", "RGBA", "P", "LA", "CMYK", "YCbCr"):
                    frame = frame.convert("L")
                frames.append(np.asarray(frame))
            return np.stack(frames)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"{name}: corrupt or unreadable image ({error})") from None


def _is_h5(name: str) -> bool:
    return Path(name).suffix.lower() in H5_SUFFIXES


def _is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def _from_zip(path: Path, options: LoadOptions):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"{path}: corrupt or truncated zip ({error})") from None
    with archive:
        members = [m for m in archive.infolist() if _safe_member(m.filename, path)]
        members = [m for m in members if _is_h5(m.filename) or _is_image(m.filename)]
        total = sum(m.file_size for m in members)
        if total > options.max_bytes:
            raise DataError(f"{path}: uncompressed size {total} bytes is above the limit of {options.max_bytes}")
        for member in sorted(members, key=lambda m: m.filename):
            label = f"{path}:{member.filename}"
            try:
                data = archive.read(member)
            except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as error:
                raise DataError(f"{label}: corrupt or truncated zip entry ({error})") from None
            except Exception as error:  # zlib.error and friends from a damaged stream
                raise DataError(f"{label}: corrupt zip entry ({error})") from None
            yield label, _read_h5(data, label, options) if _is_h5(member.filename) else _read_image(data, label)


def _from_files(files: list[Path], source: Path, options: LoadOptions):
    total = sum(f.stat().st_size for f in files)
    if total > options.max_bytes:
        raise DataError(f"{source}: size {total} bytes is above the limit of {options.max_bytes}")
    for file in files:
        yield str(file), _read_h5(file, str(file), options) if _is_h5(file.name) else _read_image(file, str(file))


def _starts_like_zip(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _sources(path: Path, options: LoadOptions):
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and (_is_h5(p.name) or _is_image(p.name)))
        return _from_files(files, path, options)
    if zipfile.is_zipfile(path) or path.suffix.lower() == ".zip" or _starts_like_zip(path):
        return _from_zip(path, options)
    if _is_h5(path.name) or h5py.is_hdf5(path):
        return _from_files([path], path, options)
    if _is_image(path.name):
        return _from_files([path], path, options)
    raise DataError(f"{path}: neither a zip, a folder, an H5 file nor an image (PNG, TIFF)")


# Shaping: tiles and checks.


def _tiles(stack: np.ndarray, name: str, options: LoadOptions) -> np.ndarray:
    height, width = stack.shape[1:3]
    if height < SIZE or width < SIZE:
        raise DataError(f"{name}: images are {height}x{width}, smaller than {SIZE}x{SIZE}")
    if (height, width) == (SIZE, SIZE):
        return stack
    if not options.tile:
        raise DataError(f"{name}: images are {height}x{width}, not {SIZE}x{SIZE}; pass --tile to cut them into tiles")
    if options.stride < 1:
        raise DataError(f"stride must be at least 1 px, got {options.stride}")
    ys = range(0, height - SIZE + 1, options.stride)
    xs = range(0, width - SIZE + 1, options.stride)
    return np.stack([stack[:, y : y + SIZE, x : x + SIZE] for y in ys for x in xs], axis=1).reshape(-1, SIZE, SIZE)


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
    stacks, dtypes, files, decoded = [], set(), 0, 0
    shape = None
    for name, raw in _sources(path, options):
        files += 1
        decoded += raw.nbytes
        if decoded > options.max_bytes:
            raise DataError(f"{name}: decoded data is above the limit of {options.max_bytes} bytes")
        if len(raw) == 0:
            continue
        # Before tiling, so a mixed folder is reported as such rather than as "pass --tile".
        if shape is not None and raw.shape[1:] != shape[1]:
            raise DataError(f"{name}: image shape {raw.shape[1:]} differs from {shape[0]}'s {shape[1]}")
        shape = shape or (name, raw.shape[1:])
        if raw.dtype.kind == "f" and not np.isfinite(raw).all():
            raise DataError(f"{name}: contains NaN or inf values")
        stack = _tiles(raw, name, options)
        stacks.append(stack)
        dtypes.add(stack.dtype)
    if not stacks:
        raise DataError(f"{path}: no images found (looked for .h5/.hdf5, .png and .tif files)")
    if len(dtypes) > 1:
        raise DataError(f"{path}: files mix dtypes {sorted(map(str, dtypes))}")
    dtype = dtypes.pop()
    low = min(float(s.min()) for s in stacks)
    high = max(float(s.max()) for s in stacks)
    zero, full, mapping = _detect(dtype, low, high, path)

    # Normalise into one preallocated array, file by file, so peak memory stays near the result.
    count = sum(len(s) for s in stacks)
    images = np.empty((count, SIZE, SIZE, 1), np.float32)
    scale = 2.0 / (full - zero)
    offset = 0
    while stacks:
        stack = stacks.pop(0)
        view = images[offset : offset + len(stack), ..., 0]
        np.multiply(stack, scale, out=view, casting="unsafe")
        view -= zero * scale + 1.0
        if options.invert:
            np.negative(view, out=view)
        offset += len(stack)
    if options.invert:
        mapping += ", inverted"

    flat = images.reshape(count, -1)
    if np.all(flat.max(axis=1) == flat.min(axis=1)):
        raise DataError(f"{path}: every image is constant (no boundaries to learn)")
    fingerprint = hashlib.sha256(memoryview(images).cast("B")).hexdigest()
    return Dataset(images, mapping, fingerprint, str(dtype), (low, high), files)


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled image order of one epoch: a function of (seed, epoch) alone, so resumes replay it."""
    return np.random.default_rng([seed, epoch]).permutation(count)


def make_dataset(images: np.ndarray, batch_size: int, seed: int, epoch: int = 0, skip_batches: int = 0):
    """A tf.data.Dataset of shuffled (batch_size, 64, 64, 1) batches for one epoch (drop_remainder).

    The order comes from (seed, epoch); `skip_batches` drops the batches a resumed run already used.
    """
    import tensorflow as tf

    order = epoch_order(len(images), seed, epoch)
    usable = (len(order) // batch_size) * batch_size
    batches = order[:usable].reshape(-1, batch_size)[skip_batches:]
    return (
        tf.data.Dataset.from_tensor_slices(batches)
        .map(lambda idx: tf.numpy_function(lambda i: images[i], [idx], tf.float32, stateful=False))
        .map(lambda x: tf.ensure_shape(x, (batch_size, SIZE, SIZE, 1)))
        .prefetch(tf.data.AUTOTUNE)
    )
