"""Synthetic datasets: `python -m training dataset` -> zip or labelled H5 -> training.loading.load."""

from __future__ import annotations

import io
import zipfile

import h5py
import numpy as np
import pytest

from tests.conftest import run_cli
from training.loading import load


def _zip_stacks(path) -> dict[str, np.ndarray]:
    """Each member of a dataset zip with its one H5 dataset, in stored order."""
    stacks = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            with h5py.File(io.BytesIO(archive.read(member)), "r") as handle:
                assert len(handle) == 1, f"{member} holds {list(handle)}"
                stacks[member] = handle[next(iter(handle))][()]
    return stacks


def _boundary_from_labels(labels: np.ndarray, periodic: bool) -> np.ndarray:
    """Pixels with a 4-neighbour of another label (neighbours inside the image, or wrapping around)."""
    if periodic:
        return np.any([np.roll(labels, shift, axis) != labels for shift in (1, -1) for axis in (1, 2)], axis=0)
    differs = np.zeros(labels.shape, bool)
    vertical = labels[:, 1:, :] != labels[:, :-1, :]
    horizontal = labels[:, :, 1:] != labels[:, :, :-1]
    differs[:, 1:, :] |= vertical
    differs[:, :-1, :] |= vertical
    differs[:, :, 1:] |= horizontal
    differs[:, :, :-1] |= horizontal
    return differs


# The zip format, round trip through load().


def test_dataset_zip_layout_is_folder_of_h5_stacks_with_short_last_file(voronoi_zip):
    stacks = _zip_stacks(voronoi_zip.path)
    assert all(name.startswith("Voronoi_micro_imgs/") and name.endswith(".h5") for name in stacks)
    assert [stack.shape for stack in stacks.values()] == [(64, 64, 100), (64, 64, 100), (64, 64, 50)]
    assert all(stack.dtype == np.uint8 for stack in stacks.values())
    assert set(np.unique(np.concatenate([s.ravel() for s in stacks.values()]))) == {0, 255}


def test_dataset_zip_per_file_1_holds_one_image_per_file(tmp_path):
    out = tmp_path / "single.zip"
    run_cli("training", "dataset", "--out", out, "--count", "3", "--per-file", "1", cwd=tmp_path, check=True)
    assert [stack.shape for stack in _zip_stacks(out).values()] == [(64, 64, 1)] * 3
    assert len(load(out).images) == 3


def test_dataset_zip_round_trip_maps_0_255_to_minus_plus_one(voronoi_zip):
    stored = np.concatenate([np.moveaxis(s, -1, 0) for s in _zip_stacks(voronoi_zip.path).values()])
    data = load(voronoi_zip.path)
    assert data.images.shape == (voronoi_zip.count, 64, 64, 1)
    assert data.mapping == "0..255 -> [-1, 1]"
    assert data.files == 3
    np.testing.assert_array_equal(data.images[..., 0], np.where(stored == 255, 1.0, -1.0))


def test_dataset_zip_same_args_byte_identical(tmp_path, voronoi_zip):
    again = tmp_path / "again.zip"
    run_cli(*[again if arg == voronoi_zip.path else arg for arg in voronoi_zip.args], cwd=tmp_path, check=True)
    assert again.read_bytes() == voronoi_zip.path.read_bytes()


def test_dataset_zip_other_seed_differs(tmp_path, voronoi_zip):
    other = tmp_path / "other.zip"
    count, seed = str(voronoi_zip.count), str(voronoi_zip.seed + 1)
    run_cli("training", "dataset", "--out", other, "--count", count, "--seed", seed, cwd=tmp_path, check=True)
    assert other.read_bytes() != voronoi_zip.path.read_bytes()
    assert load(other).fingerprint != load(voronoi_zip.path).fingerprint


def test_dataset_zip_fingerprint_stable_across_loads(voronoi_zip):
    first, second = load(voronoi_zip.path), load(voronoi_zip.path)
    assert first.fingerprint == second.fingerprint
    assert len(first.fingerprint) == 64  # sha256 hex


# The labelled H5 format.


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Two labelled H5 files from the CLI: a plain one with non-default grains, and a periodic one."""
    folder = tmp_path_factory.mktemp("labelled")
    common = ["training", "dataset", "--format", "h5", "--count", "60"]
    paths = {"plain": folder / "plain.h5", "periodic": folder / "periodic.h5"}
    run_cli(*common, "--out", paths["plain"], "--seed", "5", "--grains", "3", "6", cwd=folder, check=True)
    run_cli(*common, "--out", paths["periodic"], "--seed", "6", "--periodic", cwd=folder, check=True)
    return paths


def test_dataset_h5_holds_images_labels_and_every_parameter(labelled):
    with h5py.File(labelled["plain"], "r") as handle:
        images, labels, attrs = handle["images"], handle["labels"], dict(handle.attrs)
        assert (images.shape, images.dtype) == ((60, 64, 64), np.uint8)
        assert (labels.shape, labels.dtype) == ((60, 64, 64), np.uint16)
        assert 1 <= labels[()].min() and labels[()].max() <= 6
    assert attrs == {
        "generator": "microgan planar Voronoi",
        "seed": 5,
        "count": 60,
        "size": 64,
        "grains_min": 3,
        "grains_max": 6,
        "width": 2,
        "periodic": False,
    }
    with h5py.File(labelled["periodic"], "r") as handle:
        assert bool(handle.attrs["periodic"]) is True


@pytest.mark.parametrize("kind", ["plain", "periodic"])
def test_dataset_h5_boundary_exactly_where_a_4_neighbour_has_another_label(labelled, kind):
    with h5py.File(labelled[kind], "r") as handle:
        images, labels = handle["images"][()], handle["labels"][()]
    assert set(np.unique(images)) == {0, 255}
    np.testing.assert_array_equal(images == 255, _boundary_from_labels(labels, periodic=kind == "periodic"))


def test_dataset_h5_periodic_images_tile_seamlessly(labelled):
    # Across the seam of two copies side by side, the same rule holds as inside one image.
    with h5py.File(labelled["periodic"], "r") as handle:
        images, labels = handle["images"][:8], handle["labels"][:8]
    tiled_labels = np.tile(labels, (1, 2, 2))
    tiled_images = np.tile(images, (1, 2, 2))
    inner = (slice(None), slice(1, -1), slice(1, -1))
    expected = _boundary_from_labels(tiled_labels, periodic=False)
    np.testing.assert_array_equal((tiled_images == 255)[inner], expected[inner])
