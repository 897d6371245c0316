"""The model store over HTTP: listing, cards, sample grids, and rescans that add, skip and drop versions."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from PIL import Image

from tests.service.conftest import copy_store, make_settings, serve, wait_ready


def test_models_lists_versions_and_default(client):
    body = client.get("/models").json()
    assert body["default"] == "tiny"
    assert body["models"] == [{"name": "tiny", "versions": [1], "latest": 1, "precision": "float32"}]
    assert body["failed"] == []


def test_model_card_and_samples(client):
    card = client.get("/models/tiny/1").json()
    assert (card["name"], card["version"], card["z_dim"]) == ("tiny", 1, 16)
    response = client.get("/models/tiny/1/samples.png")
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).mode == "L"


@pytest.mark.parametrize(
    "path", ["/models/nope/1", "/models/tiny/2", "/models/tiny/2/samples.png", "/models/x/1/samples.png"]
)
def test_unknown_model_or_version_is_404(client, path):
    response = client.get(path)
    assert response.status_code == 404 and response.json()["detail"]


def test_reload_picks_up_new_version_and_skips_broken_ones(tiny_store, tmp_path):
    store = copy_store(tiny_store, tmp_path / "store")
    with serve(make_settings(store)) as client:
        wait_ready(client)
        before = client.post("/generate?seed=5").content

        # A new version (a copy, so its images are the same), a corrupt one, and an export in progress.
        shutil.copytree(store / "tiny" / "1", store / "tiny" / "2")
        (store / "tiny" / "3").mkdir()
        (store / "tiny" / "3" / "saved_model.pb").write_bytes(b"not a protobuf")
        (store / "tiny" / "3" / "model.json").write_text(json.dumps({"name": "tiny", "version": 3, "z_dim": 16}))
        shutil.copytree(store / "tiny" / "1", store / "tiny" / ".tmp-export-abc")

        report = client.post("/models/reload").json()
        assert report["loaded"] == ["tiny/2"]
        assert [(f["name"], f["version"]) for f in report["failed"]] == [("tiny", 3)]
        listing = client.get("/models").json()
        assert listing["models"][0]["versions"] == [1, 2] and listing["models"][0]["latest"] == 2
        assert [f["version"] for f in listing["failed"]] == [3]

        # The latest good version serves by default; the broken one answers 404 with the reason.
        response = client.post("/generate?seed=5")
        assert response.headers["x-model-version"] == "2" and response.content == before
        broken = client.post("/generate?seed=5&version=3")
        assert broken.status_code == 404 and "failed to load" in broken.json()["detail"]
        assert client.get("/readyz").json()["version"] == 2

        # An unchanged broken version is not retried; a removed version is dropped.
        shutil.rmtree(store / "tiny" / "2")
        report = client.post("/models/reload").json()
        assert report["loaded"] == [] and report["removed"] == ["tiny/2"]
        assert client.post("/generate?seed=5").headers["x-model-version"] == "1"
        assert 'microgan_model_loaded{model="tiny",precision="float32",version="2"}' not in client.get("/metrics").text
