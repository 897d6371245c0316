"""Dataset uploads over HTTP: zip and H5 accepted with a summary, every bad upload refused with 422 and
nothing stored, the size limit, client file names that cannot become paths, and training on an upload."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from tests.service.conftest import ADMIN, make_settings, serve, wait_job


def h5_bytes(**datasets) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle.create_group("empty")
        for name, data in datasets.items():
            handle.create_dataset(name, data=data)
    return buffer.getvalue()


def upload(client, name: str, data: bytes, **kwargs):
    return client.post("/datasets", files={"file": (name, data, "application/octet-stream")}, headers=ADMIN, **kwargs)


def stored(client) -> list[str]:
    """Everything under the app's datasets directory (hidden entries included)."""
    root = Path(client.app.state.settings.data_dir) / "datasets"
    return sorted(p.name for p in root.iterdir())


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    store = tmp_path_factory.mktemp("datasets-store")
    with serve(make_settings(store, default_model="custom")) as client:
        yield client


def test_zip_upload_is_summarised_listed_and_deleted(client, synthetic_zip):
    response = upload(client, "voronoi.zip", synthetic_zip.read_bytes())
    assert response.status_code == 201, response.text
    info = response.json()
    assert (info["count"], info["shape"], info["format"], info["name"]) == (512, [64, 64, 1], "zip", "voronoi.zip")
    assert len(info["fingerprint"]) == 64 and info["mapping"] == "0..255 -> [-1, 1]"
    assert client.get(f"/datasets/{info['id']}").json() == info
    assert info["id"] in [d["id"] for d in client.get("/datasets").json()]
    preview = client.get(f"/datasets/{info['id']}/preview.png")
    assert preview.headers["content-type"] == "image/png" and Image.open(io.BytesIO(preview.content)).format == "PNG"

    assert client.delete(f"/datasets/{info['id']}", headers=ADMIN).status_code == 204
    assert client.get(f"/datasets/{info['id']}").status_code == 404
    assert info["id"] not in stored(client)
    assert client.delete(f"/datasets/{info['id']}", headers=ADMIN).status_code == 404


def test_h5_upload_is_accepted(client):
    images = np.random.default_rng(0).integers(0, 2, (20, 64, 64), dtype=np.uint8) * 255
    info = upload(client, "stack.h5", h5_bytes(images=images)).json()
    assert (info["count"], info["format"], info["dtype"]) == (20, "h5", "uint8")
    assert client.delete(f"/datasets/{info['id']}", headers=ADMIN).status_code == 204


def _zip_with(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


GOOD = np.random.default_rng(1).integers(0, 2, (8, 64, 64), dtype=np.uint8) * 255
NAN = GOOD.astype(np.float32)
NAN[3, 5, 5] = np.nan


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("notes.txt", b"just some text\n", "neither a zip nor an H5"),
        ("notes.zip", b"just some text\n", "corrupt"),
        ("truncated.zip", _zip_with("a/b.h5", h5_bytes(images=GOOD))[:700], "corrupt"),
        ("escape.zip", _zip_with("../evil.h5", h5_bytes(images=GOOD)), "'..'"),
        ("nothing.h5", h5_bytes(), "holds no dataset"),
        ("nan.h5", h5_bytes(images=NAN), "NaN"),
        ("small.h5", h5_bytes(images=GOOD[:, :32, :32]), "smaller than 64x64"),
    ],
)
def test_bad_upload_is_422_with_the_reason_and_nothing_is_stored(client, name, data, reason):
    before = stored(client)
    response = upload(client, name, data)
    assert response.status_code == 422
    message = response.json()["detail"][0]["msg"]
    assert reason in message and message.startswith(name), message
    assert "/datasets/" not in message  # no server paths in the answer
    assert stored(client) == before


def test_form_without_a_file_field_is_422(client):
    before = stored(client)
    response = client.post("/datasets", files={"data": ("x.zip", b"PK")}, headers=ADMIN)
    assert response.status_code == 422 and "'file'" in response.json()["detail"][0]["msg"]
    assert client.post("/datasets", json={"file": "x"}, headers=ADMIN).status_code == 422
    assert stored(client) == before


def test_client_file_names_never_become_paths(client, synthetic_zip):
    marker = f"microgan-escape-{uuid.uuid4().hex}"
    data_dir = Path(client.app.state.settings.data_dir)
    names = [f"../../{marker}.zip", f"/tmp/{marker}.zip", f"..\\..\\{marker}.zip", f"a/../../../{marker}.zip"]
    for name in names:
        info = upload(client, name, synthetic_zip.read_bytes()).json()
        assert info["name"] == name  # kept as metadata, as given
        assert (data_dir / "datasets" / info["id"] / "data.zip").is_file()
        assert client.delete(f"/datasets/{info['id']}", headers=ADMIN).status_code == 204
    assert not list(data_dir.parent.parent.rglob(f"*{marker}*"))  # the test session's whole tree
    assert not Path(f"/tmp/{marker}.zip").exists() and not Path(f"{marker}.zip").exists()


def test_upload_above_the_size_limit_is_413_and_nothing_is_stored(tmp_path, synthetic_zip):
    with serve(make_settings(tmp_path, max_upload_bytes=10_000)) as client:
        # Refused from Content-Length before reading, and (just above the limit) while reading.
        for data in (synthetic_zip.read_bytes(), synthetic_zip.read_bytes()[:10_001]):
            response = upload(client, "big.zip", data)
            assert response.status_code == 413 and "10000" in response.json()["detail"]
        assert stored(client) == []


def test_training_on_an_uploaded_dataset_keeps_it_until_the_job_ends(client, synthetic_zip):
    dataset = upload(client, "voronoi.zip", synthetic_zip.read_bytes()).json()
    request = {"dataset": dataset["id"], "preset": "tiny", "config": {"total_steps": 10}, "model": "uploaded"}
    job = client.post("/train", json=request, headers=ADMIN).json()
    assert job["dataset"] == dataset["id"]
    assert client.delete(f"/datasets/{dataset['id']}", headers=ADMIN).status_code == 409  # in use

    done = wait_job(client, job["id"], lambda job: job["state"] == "succeeded")
    assert done["exported"] == {"model": "uploaded", "version": 1, "activated": False}
    run_config = Path(client.app.state.settings.data_dir) / "jobs" / job["id"] / "run" / "config.json"
    assert dataset["fingerprint"] in run_config.read_text()  # the trainer read the uploaded images
    assert client.delete(f"/datasets/{dataset['id']}", headers=ADMIN).status_code == 204
