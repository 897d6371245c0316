import io

import numpy as np
import pytest
from PIL import Image

from microstructure.images import grid, png_bytes, to_uint8, to_unit


@pytest.mark.parametrize("shape", [(64, 64), (64, 64, 1), (3, 130), (1, 1)])
def test_png_bytes_decode_to_the_same_pixels(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    decoded = Image.open(io.BytesIO(png_bytes(image)))
    assert decoded.format == "PNG" and decoded.mode == "L"
    assert np.array_equal(np.asarray(decoded), image.reshape(shape[:2]))


def test_png_bytes_of_a_strided_view_and_a_mosaic():
    images = np.random.default_rng(1).integers(0, 256, (6, 64, 64), dtype=np.uint8)
    view = images[:, ::2, 1::3][2]  # not contiguous
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(view)))), view)
    mosaic = grid(images)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(mosaic)))), mosaic)


def test_png_bytes_are_deterministic():
    image = np.random.default_rng(2).integers(0, 256, (64, 64), dtype=np.uint8)
    assert png_bytes(image) == png_bytes(image.copy())


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 3), np.uint8), np.zeros(4, np.uint8)])
def test_png_bytes_refuse_what_is_not_a_grayscale_uint8_image(bad):
    with pytest.raises(ValueError, match="uint8 image"):
        png_bytes(bad)


def test_unit_and_uint8_round_trip():
    values = np.arange(256, dtype=np.uint8)
    assert np.array_equal(to_uint8(to_unit(values)), values)
