"""Read a dataset's files in bounded pieces: what a zip, a folder, an H5 file or an image declares, then its pixels.

    >>> from pathlib import Path
    >>> from training.sources import Limits, sources
    >>> for source in sources(Path("data/voronoi.zip"), key=None, limits=Limits()):   # doctest: +SKIP
    ...     source.name, source.count, source.shape        # declared: nothing decompressed yet
    ...     for chunk in source.chunks():                   # (n, H, W) arrays of at most CHUNK_BYTES
    ...         pass

Hostile input is refused from what it declares, before its data is read: a zip by its central
directory (total uncompressed size, each member's compression ratio, encryption, method), an H5
dataset by its shape, dtype and chunk size, an image by its header. Then everything is read in
pieces, so the memory held while reading is bounded whatever the input (see `MEMORY_BOUND`):
one chunk of images, one zip member of at most SPOOL_BYTES (larger ones spill to a temporary file,
training/zipmember.py), one image frame of at most MAX_FRAME_PIXELS.
"""

from __future__ import annotations

import contextlib
import dataclasses
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

import h5py
import numpy as np
from PIL import Image, UnidentifiedImageError

from training.errors import DataError
from training.zipmember import SPOOL_BYTES, open_member

CHUNK_BYTES = 4 * 1024**2  # most stored bytes of images read at once (float32 copies: up to 4x)
MAX_FRAME_PIXELS = 4096 * 4096  # one image (or TIFF frame) is decoded whole
MAX_H5_CHUNK_BYTES = 64 * 1024**2  # HDF5 decompresses a whole storage chunk to read any part of it
MAX_RATIO = 1000  # uncompressed / stored size of a zip member or a compressed H5 file
# Peak memory of a process reading a dataset this way (`scan`, `python -m training inspect`), whatever
# the input: the interpreter with numpy, h5py and Pillow (about 60 MB), a spooled member, one image
# frame (RGBA, then grey), one H5 storage chunk, a chunk of images with its float32 copies.
MEMORY_BOUND = 64 * 1024**2 + SPOOL_BYTES + MAX_FRAME_PIXELS * 6 + MAX_H5_CHUNK_BYTES + 12 * CHUNK_BYTES
H5_SUFFIXES = {".h5", ".hdf5", ".hdf"}
IMAGE_SUFFIXES = {".png", ".tif", ".tiff"}


@dataclasses.dataclass(frozen=True)
class Limits:
    max_bytes: int  # uncompressed bytes of all the data
    max_images: int  # 64x64 images after tiling


@dataclasses.dataclass
class Source:
    """One stored array of images: its declared shape, and a reader of (n, H, W) pieces in order."""

    name: str
    count: int  # images (frames) declared
    shape: tuple[int, int]  # (H, W) of each
    chunks: Callable[[], Iterator[np.ndarray]]


def is_h5(name: str) -> bool:
    return Path(name).suffix.lower() in H5_SUFFIXES


def is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def sources(path: Path, key: str | None, limits: Limits) -> Iterator[Source]:
    """Every array of images of a zip, a folder, an H5 file or an image, in the loader's order."""
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and (is_h5(p.name) or is_image(p.name)))
        return _from_files(files, path, key, limits)
    if zipfile.is_zipfile(path) or path.suffix.lower() == ".zip" or _starts_like_zip(path):
        return _from_zip(path, key, limits)
    if is_h5(path.name) or h5py.is_hdf5(path) or is_image(path.name):
        return _from_files([path], path, key, limits)
    raise DataError(f"{path}: neither a zip, a folder, an H5 file nor an image (PNG, TIFF)")


# Files and folders.


def _from_files(files: list[Path], source: Path, key: str | None, limits: Limits) -> Iterator[Source]:
    total = sum(f.stat().st_size for f in files)
    if total > limits.max_bytes:
        raise DataError(f"{source}: size {total} bytes is above the limit of {limits.max_bytes}")
    for file in files:
        if is_h5(file.name):
            yield from _h5_sources(lambda file=file: open(file, "rb"), str(file), file.stat().st_size, key, limits)
        else:
            yield from _image_sources(lambda file=file: open(file, "rb"), str(file))


def _starts_like_zip(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False


# Zips: judged by the central directory, members decompressed in bounded steps.


def _safe_member(name: str, source: Path) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"{source}: zip entry {name!r} has an absolute path or '..'; refusing it")
    return not name.endswith("/") and not any(p.startswith(("__MACOSX", ".")) for p in path.parts)


def _from_zip(path: Path, key: str | None, limits: Limits) -> Iterator[Source]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if _safe_member(m.filename, path)]
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"{path}: corrupt or truncated zip ({error})") from None
    members = sorted((m for m in members if is_h5(m.filename) or is_image(m.filename)), key=lambda m: m.filename)
    total = sum(m.file_size for m in members)
    if total > limits.max_bytes:
        raise DataError(f"{path}: uncompressed size {total} bytes is above the limit of {limits.max_bytes}")
    for member in members:
        label = f"{path}:{member.filename}"
        if member.flag_bits & 0x1:
            raise DataError(f"{label}: encrypted zip entries are not supported")
        if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2):
            raise DataError(f"{label}: zip compression method {member.compress_type} is not supported")
        if member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise DataError(
                f"{label}: declares {member.file_size} bytes from {member.compress_size} compressed "
                f"(ratio above {MAX_RATIO}): refusing a likely zip bomb"
            )
        opener = lambda member=member, label=label: open_member(path, member, label)  # noqa: E731
        if is_h5(member.filename):
            yield from _h5_sources(opener, label, member.compress_size, key, limits)
        else:
            yield from _image_sources(opener, label)


# H5 files: judged by shape, dtype and storage chunks; read a slice at a time.


def _h5_sources(opener, name: str, stored: int, key: str | None, limits: Limits) -> Iterator[Source]:
    """One Source; its reader uses the open file, so read its chunks before asking for the next source."""
    with _h5_open(opener, name) as handle:
        dataset = _h5_dataset(handle, name, key)
        shape, dtype = dataset.shape, dataset.dtype
        declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if declared > limits.max_bytes:
            raise DataError(
                f"{name}: dataset {dataset.name!r} is {declared} bytes uncompressed, "
                f"above the limit of {limits.max_bytes}"
            )
        # Compressed or never written (read as the fill value), a dataset can declare far more than its file holds.
        if declared > MAX_RATIO * max(stored, 1):
            raise DataError(
                f"{name}: dataset {dataset.name!r} declares {declared} bytes in a file of {stored} "
                f"(ratio above {MAX_RATIO}): refusing a likely compression bomb"
            )
        storage_chunk = np.prod(dataset.chunks or (0,), dtype=np.float64) * dtype.itemsize
        if storage_chunk > MAX_H5_CHUNK_BYTES:
            raise DataError(f"{name}: H5 storage chunks of {dataset.chunks} are above {MAX_H5_CHUNK_BYTES} bytes each")
        if dtype.kind not in "biuf":
            raise DataError(f"{name}: unsupported dtype {dtype}")
        count, height, width, read = _h5_layout(shape, name)
        if height * width > MAX_FRAME_PIXELS:
            raise DataError(f"{name}: images of {height}x{width} px are above {MAX_FRAME_PIXELS} px each")
        step = max(1, CHUNK_BYTES // (height * width * dtype.itemsize))

        def chunks() -> Iterator[np.ndarray]:
            for start in range(0, count, step):
                try:
                    yield read(dataset, start, min(start + step, count))
                except (OSError, KeyError, ValueError, RuntimeError) as error:
                    raise DataError(f"{name}: corrupt or unreadable H5 file ({error})") from None

        yield Source(name, count, (height, width), chunks)


@contextlib.contextmanager
def _h5_open(opener, name: str) -> Iterator[h5py.File]:
    """h5py.File on a fresh handle from `opener`, with the loader's message for a damaged file."""
    with opener() as raw:
        try:
            handle = h5py.File(raw, "r")
        except (OSError, KeyError, ValueError, RuntimeError) as error:
            raise DataError(f"{name}: corrupt or unreadable H5 file ({error})") from None
        with handle:
            yield handle


def _h5_dataset(handle: h5py.File, name: str, key: str | None) -> h5py.Dataset:
    try:
        if key is not None:
            if key not in handle or not isinstance(handle[key], h5py.Dataset):
                raise DataError(f"{name}: no dataset named {key!r}")
            return handle[key]
        found: list[h5py.Dataset] = []
        handle.visititems(lambda _, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
    except (OSError, KeyError, ValueError, RuntimeError) as error:
        raise DataError(f"{name}: corrupt or unreadable H5 file ({error})") from None
    if not found:
        raise DataError(f"{name}: H5 file holds no dataset")
    return found[0]


def _h5_layout(shape: tuple[int, ...], name: str):
    """(count, H, W, read(dataset, start, stop) -> (stop - start, H, W)) of an accepted H5 shape."""
    if len(shape) == 2:
        return 1, shape[0], shape[1], lambda d, start, stop: d[()][None]
    if len(shape) == 3 and shape[0] == shape[1]:  # (H, W, K) channels-last, as in the original data
        return shape[2], shape[0], shape[1], lambda d, start, stop: np.moveaxis(d[:, :, start:stop], -1, 0)
    if len(shape) == 3 and shape[1] == shape[2]:
        return shape[0], shape[1], shape[2], lambda d, start, stop: d[start:stop]
    if len(shape) == 4 and shape[-1] == 1:
        return shape[0], shape[1], shape[2], lambda d, start, stop: d[start:stop, ..., 0]
    raise DataError(f"{name}: unsupported shape {shape}; expected (64,64), (64,64,K), (N,64,64) or (N,64,64,1)")


# Images: the header first, then one frame at a time.


def _image_sources(opener, name: str) -> Iterator[Source]:
    """One Source; its reader uses the open image, so read its chunks before asking for the next source."""
    with _image_open(opener, name) as image:
        frames, (width, height) = getattr(image, "n_frames", 1), image.size
        if width * height > MAX_FRAME_PIXELS:
            raise DataError(f"{name}: {width}x{height} px is above the limit of {MAX_FRAME_PIXELS} px per image")

        def chunks() -> Iterator[np.ndarray]:
            pending: list[np.ndarray] = []
            for index in range(frames):
                try:
                    image.seek(index)
                    frame = image.convert("L") if image.mode in ("RGB", "RGBA", "P", "LA", "CMYK", "YCbCr") else image
                    array = np.asarray(frame)
                except (OSError, ValueError, EOFError) as error:
                    raise DataError(f"{name}: corrupt or unreadable image ({error})") from None
                if array.shape[:2] != (height, width) or array.ndim != 2:
                    raise DataError(f"{name}: frames are not all the same shape ({array.shape} after {height, width})")
                pending.append(array)
                if sum(a.nbytes for a in pending) >= CHUNK_BYTES:
                    yield np.stack(pending)
                    pending = []
            if pending:
                yield np.stack(pending)

        yield Source(name, frames, (height, width), chunks)


@contextlib.contextmanager
def _image_open(opener, name: str) -> Iterator[Image.Image]:
    with opener() as raw:
        try:
            image = Image.open(raw)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
            raise DataError(f"{name}: corrupt or unreadable image ({error})") from None
        with image:
            yield image
