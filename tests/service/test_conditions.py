"""Models conditioned on grains per image over HTTP: grains= on /generate, its range, its records."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient

from tests.service.conftest import make_settings, serve, wait_ready, wait_until


@pytest.fixture(scope="module")
def both(tmp_path_factory, tiny_store: Path, tiny_grains_store: Path) -> Iterator[TestClient]:
    """A service over the conditional model `grains` (default) and the unconditional `tiny`."""
    store = tmp_path_factory.mktemp("both")
    shutil.copytree(tiny_store / "tiny", store / "tiny")
    shutil.copytree(tiny_grains_store / "grains", store / "grains")
    with serve(make_settings(store, default_model="grains", max_n=64)) as client:
        wait_ready(client)
        wait_until(lambda: len(client.get("/models").json()["models"]) == 2)
        yield client


def _range(store: Path) -> tuple[int, int]:
    card = json.loads((store / "grains" / "1" / "model.json").read_text())
    return card["condition"]["min"], card["condition"]["max"]


def _npy(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.load(io.BytesIO(response.content))


def test_models_say_which_model_takes_which_condition(both, tiny_grains_store):
    low, high = _range(tiny_grains_store)
    models = {m["name"]: m for m in both.get("/models").json()["models"]}
    assert models["grains"]["conditions"] == {"grains": {"min": low, "max": high}}
    assert models["tiny"]["conditions"] == {}


def test_grains_draws_the_models_own_images_for_that_count(both, tiny_grains_store):
    low, high = _range(tiny_grains_store)
    asked = _npy(both.post("/generate", params={"n": 12, "seed": 7, "grains": high, "format": "npy"}))
    model = tf.saved_model.load(str(tiny_grains_store / "grains" / "1"))
    seeds, indices = tf.fill([12], tf.constant(7, tf.int64)), tf.range(12, dtype=tf.int64)
    direct = model.signatures["sample_grains"](seeds=seeds, indices=indices, grains=tf.fill([12], high))
    assert np.array_equal(asked, direct["images"].numpy())
    # The same image for the same (model, seed, index, grains), whatever the page or batch around it.
    page = _npy(both.post("/generate", params={"n": 5, "seed": 7, "start": 4, "grains": high, "format": "npy"}))
    assert np.array_equal(page, asked[4:9])
    other = _npy(both.post("/generate", params={"n": 12, "seed": 7, "grains": low, "format": "npy"}))
    free = _npy(both.post("/generate", params={"n": 12, "seed": 7, "format": "npy"}))
    assert not np.array_equal(other, asked) and not np.array_equal(free, asked)
    response = both.post("/generate", params={"n": 1, "seed": 7, "grains": high})
    assert response.headers["X-Grains"] == str(high) and response.headers["content-type"] == "image/png"


def test_h5_zip_and_json_record_the_requested_count(both, tiny_grains_store):
    _, high = _range(tiny_grains_store)
    h5 = both.post("/generate", params={"n": 3, "seed": 2, "grains": high, "format": "h5", "labels": "true"})
    with h5py.File(io.BytesIO(h5.content)) as file:
        assert file.attrs["grains"] == high and file.attrs["labels_source"] == "partition"
        assert file["labels"].shape == (3, 64, 64)
    plain = both.post("/generate", params={"n": 3, "seed": 2, "format": "h5"})
    with h5py.File(io.BytesIO(plain.content)) as file:
        assert "grains" not in file.attrs
    archive = both.post("/generate", params={"n": 2, "seed": 2, "grains": high, "format": "zip"})
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        assert json.loads(zipped.read("manifest.json"))["grains"] == high
    body = both.post("/generate", params={"n": 2, "seed": 2, "grains": high, "format": "json"}).json()
    assert body["grains"] == high
    # The geometry is the partition drawn for that count: at most `high` sites own a grain.
    assert all(max(g["site"] for g in image["grains"]) < high for image in body["images"])


@pytest.mark.parametrize("grains", ["0", "-3", "99", "x"])
def test_grains_outside_the_trained_range_is_a_422_naming_it(both, tiny_grains_store, grains):
    low, high = _range(tiny_grains_store)
    response = both.post("/generate", params={"n": 2, "seed": 1, "grains": grains})
    assert response.status_code == 422, response.text
    if grains == "99":
        assert f"{low}..{high}" in response.text


def test_grains_for_a_model_without_the_condition_is_a_422(both):
    response = both.post("/generate", params={"n": 2, "seed": 1, "grains": 8, "model": "tiny"})
    assert response.status_code == 422 and "takes no grains condition" in response.text
