"""The model store over HTTP: listing, cards, sample grids, and rescans that add, skip and drop versions."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from PIL import Image

from tests.service.conftest import ADMIN, copy_store, make_settings, serve, wait_ready


def test_models_lists_versions_and_default(client):
    body = client.get("/models").json()
    assert body["default"] == "tiny"
    assert body["models"] == [
        {
            "name": "tiny",
            "versions": [1],
            "latest": 1,
            "precision": "float32",
            "head": "laguerre",
            "tessellation": True,
            "conditions": {},
        }
    ]
    assert body["failed"] == []


def test_model_card_and_samples(client):
    card = client.get("/models/tiny/1").json()
    assert (card["name"], card["version"], card["z_dim"], card["head"]) == ("tiny", 1, 16, "laguerre")
    response = client.get("/models/tiny/1/samples.png")
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).mode == "L"


def test_training_animation_of_a_version(client):
    response = client.get("/models/tiny/1/training.gif")
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    animation = Image.open(io.BytesIO(response.content))
    assert animation.format == "GIF" and animation.n_frames > 1


@pytest.mark.parametrize(
    "path",
    [
        "/models/nope/1",
        "/models/tiny/2",
        "/models/tiny/2/samples.png",
        "/models/x/1/samples.png",
        "/models/tiny/2/training.gif",
    ],
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

        report = client.post("/models/reload", headers=ADMIN).json()
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
        report = client.post("/models/reload", headers=ADMIN).json()
        assert report["loaded"] == [] and report["removed"] == ["tiny/2"]
        assert client.post("/generate?seed=5").headers["x-model-version"] == "1"
        assert 'microgan_model_loaded{model="tiny",precision="float32",version="2"}' not in client.get("/metrics").text


def test_activate_and_delete_versions_and_the_default_survives_a_restart(tiny_store, tmp_path):
    store = copy_store(tiny_store, tmp_path / "store")
    shutil.copytree(store / "tiny" / "1", store / "tiny" / "2")
    settings = make_settings(store, data_dir=tmp_path / "data")
    with serve(settings) as client:
        assert wait_ready(client)["version"] == 2  # the latest, until one is activated
        client.post("/models/reload", headers=ADMIN)  # waits for the first scan to load version 1 too
        assert client.post("/models/tiny/1/activate").status_code == 401
        assert client.post("/models/tiny/1/activate", headers=ADMIN).json() == {"model": "tiny", "version": 1}
        assert client.get("/readyz").json()["version"] == 1
        assert client.post("/generate?seed=5").headers["x-model-version"] == "1"
        assert client.post("/generate?seed=5&model=tiny&version=2").status_code == 200  # still loaded
        listing = client.get("/models").json()
        assert (listing["default"], listing["default_version"]) == ("tiny", 1)
        assert client.post("/models/tiny/9/activate", headers=ADMIN).status_code == 404
        refused = client.delete("/models/tiny/1", headers=ADMIN)
        assert refused.status_code == 409 and "default" in refused.json()["detail"]

    with serve(settings) as client:  # the activated default comes back from the data dir
        assert wait_ready(client)["version"] == 1  # loaded first, so never served 2 meanwhile
        client.post("/models/reload", headers=ADMIN)
        assert client.delete("/models/tiny/2", headers=ADMIN).status_code == 204
        assert not (store / "tiny" / "2").exists() and sorted(p.name for p in (store / "tiny").iterdir()) == ["1"]
        assert client.get("/models").json()["models"][0]["versions"] == [1]
        assert client.get("/models/tiny/2").status_code == 404
        assert client.delete("/models/tiny/2", headers=ADMIN).status_code == 404
        assert client.post("/models/reload", headers=ADMIN).json()["loaded"] == []  # not brought back
        assert (tmp_path / "data" / "default_model.json").is_file()


def test_read_only_replica_follows_the_default_and_refuses_admin_writes(tiny_store, tmp_path):
    store = copy_store(tiny_store, tmp_path / "store")
    shutil.copytree(store / "tiny" / "1", store / "tiny" / "2")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "default_model.json").write_text(json.dumps({"model": "tiny", "version": 1}))
    with serve(make_settings(store, data_dir=tmp_path / "data", models_read_only=True)) as client:
        assert wait_ready(client)["version"] == 1
        for response in (
            client.post("/models/tiny/2/activate", headers=ADMIN),
            client.delete("/models/tiny/2", headers=ADMIN),
            client.post("/train", json={"dataset": {"synthetic": {}}}, headers=ADMIN),
        ):
            assert response.status_code == 409 and "read-only" in response.json()["detail"]
        assert (store / "tiny" / "2").exists()

        # The primary activates another version: the replica follows at its next rescan.
        (tmp_path / "data" / "default_model.json").write_text(json.dumps({"model": "tiny", "version": 2}))
        client.post("/models/reload", headers=ADMIN)
        assert client.get("/readyz").json()["version"] == 2
