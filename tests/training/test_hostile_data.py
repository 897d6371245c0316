"""`python -m training inspect` on hostile files: refused with one line, in bounded memory.

Each file is built in the test (tests/hostile.py); the validating process's peak resident memory is
measured from a fresh interpreter (getrusage of its children) and must stay under the bound the
reader states, training.sources.MEMORY_BOUND, whatever the file declares or holds.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile

import h5py
import numpy as np
import pytest

from tests.conftest import ENV, ROOT
from tests.hostile import bzip2_zip, h5_declaring, run_measured
from training.loading import load
from training.sources import MEMORY_BOUND


def _inspect(path, cwd, *flags: str) -> dict:
    command = [sys.executable, "-m", "training", "inspect", str(path), "--json", "--preview", "p.png", *flags]
    return run_measured(command, {**ENV, "PYTHONPATH": str(ROOT)}, cwd)


def _refused(result: dict, *fragments: str) -> None:
    assert result["code"] == 2, result
    line = result["stderr"].strip()
    assert "\n" not in line and line.startswith("error: "), result["stderr"]
    for fragment in fragments:
        assert fragment in line
    assert result["peak"] < MEMORY_BOUND, f"peak {result['peak'] / 2**20:.0f} MiB"


def test_inspect_bzip2_bomb_refused_by_its_ratio_in_bounded_memory(tmp_path, request):
    path = bzip2_zip(tmp_path / "bomb.zip", request.config.cache)
    assert path.stat().st_size < 2000
    _refused(_inspect(path, tmp_path), "imgs/a.h5", "2147483648 bytes", "ratio above 1000")


def test_inspect_bzip2_bomb_with_lying_sizes_stopped_at_its_declared_size(tmp_path, request):
    # The headers claim 1522 bytes: only decompressing tells, and it must stop there, not at 2 GiB.
    path = bzip2_zip(tmp_path / "liar.zip", request.config.cache, honest=False)
    _refused(_inspect(path, tmp_path), "imgs/a.h5", "longer than its declared size")


def test_inspect_h5_declaring_60000_images_refused_in_bounded_memory(tmp_path):
    path = h5_declaring(tmp_path / "bomb.h5", (60000, 64, 64))
    assert path.stat().st_size < 10_000
    _refused(_inspect(path, tmp_path), "245760000 bytes", "compression bomb")


def test_inspect_image_count_above_max_images_refused_before_reading(tmp_path):
    path = tmp_path / "many.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("images", data=np.zeros((3000, 64, 64), np.uint8))
    _refused(_inspect(path, tmp_path, "--max-images", "2000"), "3000 images", "above the limit of 2000")


def test_inspect_max_bytes_flag_refuses_declared_size(tmp_path):
    path = h5_declaring(tmp_path / "big.h5", (600, 64, 64), compression=None)
    _refused(_inspect(path, tmp_path, "--max-bytes", "1000000"), "2457600 bytes", "above the limit of 1000000")


@pytest.mark.parametrize("flags", [["--max-images", "0"], ["--max-bytes", "-1"]], ids=["images-0", "bytes-negative"])
def test_inspect_limits_below_one_refused(tmp_path, flags):
    path = h5_declaring(tmp_path / "any.h5", (10, 64, 64), compression=None)
    _refused(_inspect(path, tmp_path, *flags), "must be at least 1")


def test_inspect_large_dataset_streams_with_load_figures(tmp_path):
    # 40,000 distinct images (160 MB as uint8, 650 MB as float32) in a 0.8 MB zip: accepted, read in
    # pieces; load() holding them all needs several times the bound, so the bound is not trivial.
    images = np.zeros((40000, 64, 64), np.uint8)
    index = np.arange(40000)
    images[index, 4 + index % 56, :] = 255
    images[index, :, (index * 7) % 64] = 255
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle.create_dataset("images", data=images)
    path = tmp_path / "large.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.h5", buffer.getvalue())
    del images, buffer

    result = _inspect(path, tmp_path)
    assert result["code"] == 0, result["stderr"]
    assert result["peak"] < MEMORY_BOUND, f"peak {result['peak'] / 2**20:.0f} MiB"
    loaded = run_measured(
        [sys.executable, "-c", f"from training.loading import load; print(load({str(path)!r}).fingerprint)"],
        {**ENV, "PYTHONPATH": str(ROOT)},
        tmp_path,
    )
    assert loaded["peak"] > 2 * MEMORY_BOUND
    summary = json.loads(result["stdout"])
    assert summary["count"] == 40000 and summary["fingerprint"] == loaded["stdout"].strip()


def test_load_shares_the_checks(tmp_path):
    path = h5_declaring(tmp_path / "bomb.h5", (60000, 64, 64))
    with pytest.raises(ValueError, match="compression bomb"):
        load(path)


def _patterned_h5(count: int) -> bytes:
    # Random boundary pixels: compressible (about 8x) like real data, not like a bomb.
    images = (np.random.default_rng(count).random((count, 64, 64)) < 0.05).astype(np.uint8) * 255
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle.create_dataset("images", data=images)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2], ids=["stored", "deflate", "bzip2"]
)
def test_every_supported_zip_method_reads_the_same_images(tmp_path, method):
    # 3 MB members: decompressed in several bounded steps, into a spool that stays in memory.
    data = _patterned_h5(700)
    (tmp_path / "plain.h5").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "data.zip", "w", compression=method) as archive:
        archive.writestr("a.h5", data)
        archive.writestr("b/c.h5", data)
    loaded = load(tmp_path / "data.zip")
    assert len(loaded.images) == 1400
    assert np.array_equal(loaded.images[:700], load(tmp_path / "plain.h5").images)


def test_zip_method_without_bounded_reader_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "lzma.zip", "w", compression=zipfile.ZIP_LZMA) as archive:
        archive.writestr("a.h5", _patterned_h5(10))
    with pytest.raises(ValueError, match="compression method 14 is not supported"):
        load(tmp_path / "lzma.zip")


def test_truncated_bzip2_member_refused(tmp_path):
    path = tmp_path / "cut.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("a.h5", _patterned_h5(300))
    info = zipfile.ZipFile(path).infolist()[0]
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    half = info.compress_size // 2
    data[start + half : start + info.compress_size] = bytes(info.compress_size - half)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt or truncated zip entry"):
        load(path)
