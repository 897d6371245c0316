"""Response encodings of uint8 (n, 64, 64) image arrays: png, zip, h5, npy and grid.

    >>> import numpy as np
    >>> from service.formats import Batch, ZipStream, npy_header
    >>> batch = Batch(model="tiny", version=1, seed=7, start=0, n=2, z_dim=16, precision="float32")
    >>> images = np.zeros((2, 64, 64), np.uint8)
    >>> archive = ZipStream(batch)
    >>> body = archive.begin() + archive.add(images) + archive.end()   # a complete zip archive
    >>> batch.file_name(1)
    'tiny-v1-s7-00001.png'
    >>> len(npy_header(2)) % 64                          # npy headers are padded to 64 bytes
    0

Every encoding is byte-identical for the same images and request: no timestamps (zip entries are
dated 1980-01-01, h5 datasets are written without times).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass
from enum import StrEnum

import numpy as np

from microstructure.images import SIZE, grid, png_bytes

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class Format(StrEnum):
    png = "png"
    zip = "zip"
    h5 = "h5"
    npy = "npy"
    grid = "grid"
    json = "json"  # tessellation models only: grain geometry
    svg = "svg"  # tessellation models only: boundary networks as vector paths


GEOMETRY_FORMATS = (Format.json, Format.svg)

MEDIA_TYPES = {
    Format.png: "image/png",
    Format.zip: "application/zip",
    Format.h5: "application/x-hdf5",
    Format.npy: "application/octet-stream",
    Format.grid: "image/png",
    Format.json: "application/json",
    Format.svg: "image/svg+xml",
}


@dataclass(frozen=True)
class Batch:
    """What identifies a response's images; written into the zip manifest and the h5 attributes."""

    model: str
    version: int
    seed: int
    start: int
    n: int
    z_dim: int
    precision: str
    grains: int | None = None  # grains per image asked of a conditional model (None: not asked)

    def record(self) -> dict:
        """The fields that were set, for the zip manifest, the h5 attributes and the json header."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    def file_name(self, index: int, extension: str = "png") -> str:
        return f"{self.model}-v{self.version}-s{self.seed}-{index:05d}.{extension}"

    def download_name(self, fmt: Format, grid: bool = False) -> str:
        stem = f"{self.model}-v{self.version}-s{self.seed}"
        last = self.start + self.n - 1
        span = f"{self.start:05d}" if self.n == 1 else f"{self.start:05d}-{last:05d}"
        grid = grid or fmt is Format.grid
        extension = {Format.grid: "png", Format.png: "png"}.get(fmt, fmt.value)
        if fmt is Format.svg and self.n > 1 and not grid:
            extension = "zip"  # one SVG per image
        return f"{stem}-{span}{'-grid' if grid else ''}.{extension}"


def png(images: np.ndarray) -> bytes:
    return png_bytes(images[0])


def pngs(images: np.ndarray) -> list[bytes]:
    """One PNG per image (what the zip format stores; the batcher's workers run this)."""
    return [png_bytes(image) for image in images]


def grid_png(images: np.ndarray) -> bytes:
    return png_bytes(grid(images))


class _Sink:
    """A write-only, unseekable file: zipfile then writes data descriptors and never seeks back."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED  # PNGs are already deflated
    info.external_attr = 0o644 << 16
    return info


class ZipStream:
    """A zip archive written piece by piece: manifest.json first, then one PNG per image."""

    def __init__(self, batch: Batch, extension: str = "png") -> None:
        self.batch = batch
        self.extension = extension
        self._sink = _Sink()
        self._archive = zipfile.ZipFile(self._sink, "w")  # type: ignore[call-overload]  # any object with write()
        self._index = batch.start

    def begin(self) -> bytes:
        files = [self.batch.file_name(self.batch.start + i, self.extension) for i in range(self.batch.n)]
        manifest = {**self.batch.record(), "files": files}
        self._archive.writestr(_entry("manifest.json"), json.dumps(manifest, indent=2))
        return self._sink.take()

    def add(self, images: np.ndarray) -> bytes:
        return self.add_files(pngs(images))

    def add_files(self, encoded: list[bytes]) -> bytes:
        """The next images, already encoded as files of the stream's extension (PNGs by `pngs`, or SVGs)."""
        for data in encoded:
            self._archive.writestr(_entry(self.batch.file_name(self._index, self.extension)), data)
            self._index += 1
        return self._sink.take()

    def end(self) -> bytes:
        self._archive.close()
        return self._sink.take()


def npy_header(n: int, shape: tuple[int, int] = (SIZE, SIZE)) -> bytes:
    """The .npy header of a uint8 (n, *shape) array; the raw C-order bytes follow it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": np.dtype(np.uint8).str, "fortran_order": False, "shape": (n, *shape)}
    )
    return buffer.getvalue()


def h5(
    batch: Batch,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    labels_source: str | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> bytes:
    """images (and grain labels, and any extra datasets) with the batch as attributes; labels_source says
    where labels came from."""
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        file.create_dataset("images", data=images, track_times=False)
        if labels is not None:
            file.create_dataset("labels", data=labels.astype(np.uint16), track_times=False)
            file.attrs["labels_source"] = labels_source or "segmentation"
        for name, data in (extra or {}).items():
            file.create_dataset(name, data=data, track_times=False)
        for key, value in batch.record().items():
            file.attrs[key] = value
    return buffer.getvalue()
