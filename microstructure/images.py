"""The one place where image conversions live.

    >>> import numpy as np
    >>> from microstructure.images import to_uint8, to_unit, png_bytes
    >>> to_uint8(np.array([-1.0, 0.0, 1.0]))
    array([  0, 128, 255], dtype=uint8)
    >>> png_bytes(np.zeros((64, 64), np.uint8))[:4]
    b'\\x89PNG'

Every image is SIZE x SIZE pixels (the one place that fact lives). Model space is float32 in
[-1, 1] with boundaries at +1; storage and display space is uint8 with boundaries at 255.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIZE = 64  # px: the side of every image the models read and draw, and the unit of their sites


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Map [-1, 1] floats to uint8 0..255 (rounded, clipped)."""
    scaled = (np.asarray(images, np.float32) + 1.0) * 127.5
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def to_unit(images: np.ndarray) -> np.ndarray:
    """Map uint8 0..255 to float32 [-1, 1]."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


def png_bytes(image: np.ndarray, compress_level: int = 1) -> bytes:
    """Encode one (H, W) or (H, W, 1) uint8 image as an 8-bit grayscale PNG.

    Written directly with zlib (filter type 0 on every row, level-1 deflate) rather than through
    Pillow, whose per-row adaptive filtering makes it 3x slower on our 64x64 images (150 vs 50 us,
    measured) for files no smaller: in the service this is most of the CPU a zip of PNGs costs
    beyond the forward pass. Pillow reads the result; tests/microstructure/test_images.py checks it.
    """
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or array.dtype != np.uint8:
        raise ValueError(f"png_bytes needs a (H, W) uint8 image, got {array.dtype} {array.shape}")
    height, width = array.shape
    rows = np.zeros((height, width + 1), np.uint8)  # each row starts with its filter type, 0 = none
    rows[:, 1:] = array
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale, no interlace
    return b"".join(
        (
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), compress_level)),
            _png_chunk(b"IEND", b""),
        )
    )


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def grid(images: np.ndarray, columns: int | None = None, pad: int = 2, pad_value: int = 128) -> np.ndarray:
    """Tile (N, H, W[, 1]) uint8 images into one mosaic, row by row, with a thin grey frame."""
    array = np.asarray(images)
    if array.ndim == 4:
        array = array[..., 0]
    count, height, width = array.shape
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    mosaic = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad), pad_value, np.uint8)
    for i, image in enumerate(array):
        r, c = divmod(i, columns)
        y, x = pad + r * (height + pad), pad + c * (width + pad)
        mosaic[y : y + height, x : x + width] = image
    return mosaic
