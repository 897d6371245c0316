"""training.loading: what load() accepts, how it maps values, and how it refuses bad input.

Every file is built inside the test; no data is committed.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from microstructure.images import to_unit
from training.errors import DataError
from training.loading import LoadOptions, load

# Building inputs.


def _pattern(index: int) -> np.ndarray:
    """A distinct 64x64 uint8 image per index: 255 on a horizontal and a vertical line, 0 elsewhere."""
    image = np.zeros((64, 64), np.uint8)
    image[4 + index % 56, :] = 255
    image[:, 60 - index % 56] = 255
    return image


def _patterns(count: int) -> np.ndarray:
    return np.stack([_pattern(i) for i in range(count)])


def _expected(images: np.ndarray) -> np.ndarray:
    """uint8 0/255 images as load() returns them: (N, 64, 64, 1), -1 and +1."""
    return np.where(images[..., None] == 255, np.float32(1), np.float32(-1))


def _h5(path: Path, **datasets: np.ndarray) -> Path:
    with h5py.File(path, "w") as handle:
        for key, value in datasets.items():
            handle.create_dataset(key, data=value)
    return path


def _h5_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle.create_dataset("images", data=array)
    return buffer.getvalue()


def _image_bytes(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


# Bad input: each builder returns (path, options, the place the message must name, the reason).


def _path_missing(tmp):
    return tmp / "absent.zip", LoadOptions(), str(tmp / "absent.zip"), "no such file"


def _text_file(tmp):
    path = tmp / "notes.txt"
    path.write_text("grain boundaries, but as prose\n")
    return path, LoadOptions(), str(path), "neither a zip"


def _corrupt_zip(tmp):
    path = tmp / "data.zip"
    path.write_bytes(b"this is not a zip archive " * 40)
    return path, LoadOptions(), str(path), "corrupt or truncated zip"


def _truncated_zip(tmp):
    path = _zip(tmp / "data.zip", {"imgs/a.h5": _h5_bytes(_patterns(3))})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path, LoadOptions(), str(path), "corrupt or truncated zip"


def _truncated_zip_without_suffix(tmp):
    path = _zip(tmp / "data.bin", {"imgs/a.h5": _h5_bytes(_patterns(3))})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path, LoadOptions(), str(path), "corrupt or truncated zip"


def _corrupt_zip_entry(tmp):
    # Stored (not deflated) so flipping a byte in the middle damages the data, caught by its CRC.
    path = _zip(tmp / "data.zip", {"imgs/a.h5": _h5_bytes(_patterns(3))}, zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path, LoadOptions(), f"{path}:imgs/a.h5", "corrupt"


def _corrupt_h5(tmp):
    path = tmp / "data.h5"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path, LoadOptions(), str(path), "corrupt or unreadable H5"


def _truncated_h5_in_zip(tmp):
    data = _h5_bytes(_patterns(3))
    path = _zip(tmp / "data.zip", {"Voronoi_micro_imgs/a.h5": data[: len(data) // 2]})
    return path, LoadOptions(), f"{path}:Voronoi_micro_imgs/a.h5", "corrupt or unreadable H5"


def _zip_absolute_entry(tmp):
    path = _zip(tmp / "data.zip", {"/tmp/evil.h5": _h5_bytes(_patterns(3))})
    return path, LoadOptions(), str(path), "absolute path or '..'"


def _zip_dotdot_entry(tmp):
    path = _zip(tmp / "data.zip", {"imgs/../../evil.h5": _h5_bytes(_patterns(3))})
    return path, LoadOptions(), str(path), "absolute path or '..'"


def _h5_without_dataset(tmp):
    path = tmp / "empty.h5"
    with h5py.File(path, "w") as handle:
        handle.create_group("images")
    return path, LoadOptions(), str(path), "holds no dataset"


def _h5_missing_key(tmp):
    path = _h5(tmp / "data.h5", images=_patterns(3))
    return path, LoadOptions(key="labels"), str(path), "no dataset named 'labels'"


def _smaller_than_64(tmp):
    path = _h5(tmp / "small.h5", images=np.zeros((32, 32, 4), np.uint8))
    return path, LoadOptions(tile=True), str(path), "smaller than 64x64"


def _not_64_without_tile(tmp):
    path = _h5(tmp / "large.h5", images=np.tile(_pattern(0), (2, 2)))
    return path, LoadOptions(), str(path), "not 64x64; pass --tile"


def _nan(tmp):
    images = _patterns(3).astype(np.float32) / 255
    images[1, 5, 5] = np.nan
    path = _h5(tmp / "nan.h5", images=images)
    return path, LoadOptions(), str(path), "NaN or inf"


def _inf(tmp):
    images = _patterns(3).astype(np.float32) / 255
    images[2, 0, 0] = np.inf
    path = _h5(tmp / "inf.h5", images=images)
    return path, LoadOptions(), str(path), "NaN or inf"


def _all_constant(tmp):
    path = _h5(tmp / "flat.h5", images=np.full((5, 64, 64), 255, np.uint8))
    return path, LoadOptions(), str(path), "constant"


def _shapes_differ(tmp):
    folder = tmp / "mixed"
    folder.mkdir()
    _h5(folder / "a.h5", images=_patterns(2))
    _h5(folder / "b.h5", images=np.zeros((2, 128, 128), np.uint8))
    return folder, LoadOptions(), str(folder / "b.h5"), "differs"


def _shapes_differ_tiled(tmp):
    folder = tmp / "micrographs"
    folder.mkdir()
    (folder / "a.png").write_bytes(_image_bytes(np.tile(_pattern(0), (2, 2)), "PNG"))
    (folder / "b.png").write_bytes(_image_bytes(np.tile(_pattern(1), (4, 4)), "PNG"))
    return folder, LoadOptions(tile=True), str(folder / "b.png"), "differs"


def _empty_zip(tmp):
    path = _zip(tmp / "empty.zip", {})
    return path, LoadOptions(), str(path), "no images found"


def _zip_without_images(tmp):
    path = _zip(tmp / "docs.zip", {"README.txt": b"no images here"})
    return path, LoadOptions(), str(path), "no images found"


def _empty_folder(tmp):
    folder = tmp / "nothing"
    folder.mkdir()
    return folder, LoadOptions(), str(folder), "no images found"


def _zip_bomb(tmp):
    # Small enough to build in a blink; the limit is lowered instead.
    path = _zip(tmp / "bomb.zip", {"imgs/a.h5": _h5_bytes(np.zeros((64, 64, 100), np.uint8))})
    return path, LoadOptions(max_bytes=100_000), str(path), "above the limit of 100000"


def _h5_bomb(tmp):
    # gzip inside the H5: 8 MB of zeros in a file of a few kB.
    path = tmp / "bomb.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("images", data=np.zeros((2000, 64, 64), np.uint8), compression="gzip")
    return path, LoadOptions(max_bytes=1_000_000), str(path), "above the limit of 1000000"


def _image_decompression_bomb(tmp):
    # A PNG header claiming 30000x30000 pixels, with no pixel data: Pillow refuses it on open.
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path = tmp / "huge.png"
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path, LoadOptions(), str(path), "exceeds limit"


def _tiff_frames_differ(tmp):
    path = tmp / "stack.tif"
    first, second = Image.fromarray(_pattern(0)), Image.fromarray(np.tile(_pattern(1), (2, 2)))
    first.save(path, save_all=True, append_images=[second])
    return path, LoadOptions(), str(path), "same shape"


def _values_above_65535(tmp):
    path = _h5(tmp / "counts.h5", images=_patterns(2).astype(np.float32) * 1000)
    return path, LoadOptions(), str(path), "above 65535"


def _negative_values_outside_unit(tmp):
    path = _h5(tmp / "signed.h5", images=_patterns(2).astype(np.float32) - 100)
    return path, LoadOptions(), str(path), "outside -1..1"


BAD_INPUTS = [
    pytest.param(case, id=case.__name__.strip("_").replace("_", "-"))
    for case in [
        _path_missing,
        _text_file,
        _corrupt_zip,
        _truncated_zip,
        _truncated_zip_without_suffix,
        _corrupt_zip_entry,
        _corrupt_h5,
        _truncated_h5_in_zip,
        _zip_absolute_entry,
        _zip_dotdot_entry,
        _h5_without_dataset,
        _h5_missing_key,
        _smaller_than_64,
        _not_64_without_tile,
        _nan,
        _inf,
        _all_constant,
        _shapes_differ,
        _shapes_differ_tiled,
        _empty_zip,
        _zip_without_images,
        _empty_folder,
        _zip_bomb,
        _h5_bomb,
        _image_decompression_bomb,
        _tiff_frames_differ,
        _values_above_65535,
        _negative_values_outside_unit,
    ]
]


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_load_bad_input_raises_data_error_naming_file_and_reason(tmp_path, case):
    path, options, where, reason = case(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(DataError) as caught:
        load(path, options)
    message = str(caught.value)
    assert where in message
    assert reason in message
    assert "\n" not in message
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, nothing extracted


# Accepted H5 shapes and dtypes.


@pytest.mark.parametrize(
    ("count", "store"),
    [
        (1, lambda images: images[0]),
        (3, lambda images: np.moveaxis(images, 0, -1)),  # the original's channels-last layout
        (3, lambda images: images),
        (3, lambda images: images[..., None]),
    ],
    ids=["64x64", "64x64xK", "Nx64x64", "Nx64x64x1"],
)
def test_load_h5_shape_accepted(tmp_path, count, store):
    images = _patterns(count)
    data = load(_h5(tmp_path / "data.h5", images=store(images)))
    np.testing.assert_array_equal(data.images, _expected(images))
    assert data.images.dtype == np.float32
    assert data.mapping == "0..255 -> [-1, 1]"


@pytest.mark.parametrize(
    ("stored", "mapping"),
    [
        (lambda b: np.where(b, 255, 0).astype(np.uint8), "0..255 -> [-1, 1]"),
        (lambda b: np.where(b, 65535, 0).astype(np.uint16), "0..65535 -> [-1, 1]"),
        (lambda b: b.astype(np.float32), "0..1 -> [-1, 1]"),
        (lambda b: np.where(b, 1, -1).astype(np.float32), "-1..1 (kept)"),
        (lambda b: b, "bool -> [-1, 1]"),
        (lambda b: np.where(b, 1, -1).astype(np.int8), "-1..1 (kept)"),
    ],
    ids=["uint8", "uint16", "float32-0..1", "float32-1..1", "bool", "int8-1..1"],
)
def test_load_dtype_mapped_to_plus_minus_one(tmp_path, stored, mapping):
    images = _patterns(4)
    data = load(_h5(tmp_path / "data.h5", images=stored(images == 255)))
    np.testing.assert_array_equal(data.images, _expected(images))
    assert data.mapping == mapping


def test_load_uint8_grey_levels_mapped_like_to_unit(tmp_path):
    ramp = np.tile(np.arange(256, dtype=np.uint8)[None, :64], (64, 1)) * 4 + 3  # 3..255
    data = load(_h5(tmp_path / "ramp.h5", images=ramp))
    np.testing.assert_allclose(data.images[0, ..., 0], to_unit(ramp), atol=1e-6)
    assert data.source_range == (3.0, 255.0)


def test_load_empty_file_among_others_skipped(tmp_path):
    _h5(tmp_path / "a.h5", images=np.zeros((0, 64, 64), np.uint8))
    _h5(tmp_path / "b.h5", images=_patterns(2))
    data = load(tmp_path)
    np.testing.assert_array_equal(data.images, _expected(_patterns(2)))
    assert data.files == 2


def test_load_key_selects_dataset(tmp_path):
    path = _h5(tmp_path / "data.h5", a_first=_patterns(2), b_second=_patterns(5))
    assert len(load(path).images) == 2
    np.testing.assert_array_equal(load(path, LoadOptions(key="b_second")).images, _expected(_patterns(5)))


# Images: PNG and TIFF, in a folder or a zip.


@pytest.mark.parametrize("container", ["folder", "zip"])
@pytest.mark.parametrize(("fmt", "suffix"), [("PNG", ".png"), ("TIFF", ".tif")])
def test_load_images_in_container_accepted(tmp_path, container, fmt, suffix):
    images = _patterns(3)
    members = {f"imgs/{i:02d}{suffix}": _image_bytes(image, fmt) for i, image in enumerate(images)}
    if container == "zip":
        path = _zip(tmp_path / "imgs.zip", members)
    else:
        path = tmp_path / "data"
        for name, data in members.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(data)
    data = load(path)
    np.testing.assert_array_equal(data.images, _expected(images))
    assert data.files == 3


def test_load_16_bit_tiff_mapped_from_65535(tmp_path):
    path = tmp_path / "micrograph.tif"
    path.write_bytes(_image_bytes(_pattern(0).astype(np.uint16) * 257, "TIFF"))
    data = load(path)
    np.testing.assert_array_equal(data.images, _expected(_patterns(1)))
    assert data.mapping == "0..65535 -> [-1, 1]"


def test_load_rgb_image_becomes_grayscale(tmp_path):
    path = tmp_path / "colour.png"
    path.write_bytes(_image_bytes(np.repeat(_pattern(0)[..., None], 3, axis=-1), "PNG"))
    data = load(path)
    assert data.images.shape == (1, 64, 64, 1)
    np.testing.assert_array_equal(data.images, _expected(_patterns(1)))


def test_load_invert_puts_dark_boundaries_at_plus_one(tmp_path):
    images = _patterns(2)
    data = load(_h5(tmp_path / "dark.h5", images=255 - images), LoadOptions(invert=True))
    np.testing.assert_array_equal(data.images, _expected(images))
    assert data.mapping == "0..255 -> [-1, 1], inverted"


# Tiling a large micrograph.


def test_load_tile_cuts_256_image_into_16_tiles_row_by_row(tmp_path):
    tiles = _patterns(16)
    micrograph = tiles.reshape(4, 4, 64, 64).transpose(0, 2, 1, 3).reshape(256, 256)
    path = tmp_path / "micrograph.png"
    path.write_bytes(_image_bytes(micrograph, "PNG"))
    data = load(path, LoadOptions(tile=True))
    np.testing.assert_array_equal(data.images, _expected(tiles))


def test_load_tile_with_stride_32_gives_49_tiles(tmp_path):
    micrograph = np.tile(_pattern(0), (4, 4))
    path = _h5(tmp_path / "micrograph.h5", images=micrograph)
    data = load(path, LoadOptions(tile=True, stride=32))
    assert data.images.shape == (49, 64, 64, 1)
    np.testing.assert_array_equal(data.images[8], _expected(micrograph[32:96, 32:96]))
