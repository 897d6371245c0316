"""Admin auth: every admin endpoint wants the Bearer key (401 without, 403 with a wrong one); the key
comes from MICROGAN_API_KEY or is generated once into the data dir (mode 0600); /generate is open
unless MICROGAN_PROTECT_GENERATE=true."""

from __future__ import annotations

import logging
import stat

import pytest

from service.settings import Settings
from tests.service.conftest import ADMIN, API_KEY, make_settings, serve, wait_ready

ADMIN_CALLS = [
    ("POST", "/models/reload"),
    ("POST", "/models/tiny/1/activate"),
    ("DELETE", "/models/tiny/1"),
    ("POST", "/datasets"),
    ("DELETE", "/datasets/0123456789ab"),
    ("POST", "/train"),
    ("POST", "/train/0123456789ab/cancel"),
    ("POST", "/train/0123456789ab/resume"),
    ("DELETE", "/train/0123456789ab"),
]


@pytest.mark.parametrize("method, path", ADMIN_CALLS)
def test_admin_call_without_key_is_401_and_with_wrong_key_403(client, method, path):
    body = {"json": {}} if method == "POST" else {}
    missing = client.request(method, path, **body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "Bearer" in missing.json()["detail"]
    assert client.request(method, path, headers={"Authorization": f"Basic {API_KEY}"}, **body).status_code == 401
    for wrong in ("nope", API_KEY[:-1], API_KEY + "x", API_KEY[:-1] + "X"):
        response = client.request(method, path, headers={"Authorization": f"Bearer {wrong}"}, **body)
        assert response.status_code == 403 and response.json() == {"detail": "wrong API key"}


def test_admin_call_with_the_key_passes(client):
    assert client.post("/models/reload", headers=ADMIN).status_code == 200
    assert client.delete("/train/0123456789ab", headers=ADMIN).status_code == 404  # past the gate


def test_generate_is_open_by_default_and_protected_on_request(tiny_store, client):
    assert client.post("/generate?seed=1").status_code == 200
    with serve(make_settings(tiny_store, protect_generate=True)) as protected:
        wait_ready(protected)
        assert protected.post("/generate?seed=1").status_code == 401
        assert protected.post("/generate?seed=1", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert protected.post("/generate?seed=1", headers=ADMIN).status_code == 200
        assert protected.get("/models").status_code == 200  # reading stays open


def test_key_is_generated_once_into_the_data_dir_with_mode_0600(tmp_path, caplog):
    settings = make_settings(tmp_path / "store", api_key=None, data_dir=tmp_path / "data")
    assert settings.api_key is None
    with caplog.at_level(logging.INFO, logger="service"), serve(settings) as client:
        key_file = tmp_path / "data" / "api_key"
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key) >= 32
        assert str(key_file) in caplog.text and key not in caplog.text  # the path is logged, never the key
        assert client.post("/models/reload").status_code == 401
        assert client.post("/models/reload", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    with serve(settings) as client:  # a restart keeps it
        assert key_file.read_text().strip() == key
        assert client.post("/models/reload", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_key_from_the_environment_is_used_and_not_written(tmp_path, monkeypatch):
    monkeypatch.setenv("MICROGAN_API_KEY", "from-the-environment")
    monkeypatch.setenv("MICROGAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MICROGAN_MODELS_DIR", str(tmp_path / "store"))
    settings = Settings(_env_file=None)
    assert "from-the-environment" not in repr(settings)
    with serve(settings) as client:
        headers = {"Authorization": "Bearer from-the-environment"}
        assert client.post("/models/reload", headers=headers).status_code == 200
    assert not (tmp_path / "data" / "api_key").exists()


def test_processes_starting_at_once_agree_on_one_whole_key(tmp_path):
    """Eight processes creating the key at the same moment: one key wins, none reads a half-written file."""
    import concurrent.futures
    import multiprocessing

    from service.auth import load_or_create_key

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(8, mp_context=context) as pool:
        keys = list(pool.map(load_or_create_key, [None] * 8, [tmp_path] * 8))
    assert len(set(keys)) == 1 and len(keys[0]) >= 32
    assert (tmp_path / "api_key").read_text().strip() == keys[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["api_key"]  # no temporary file left
