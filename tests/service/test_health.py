"""Liveness, readiness (before and after a model is there), the default-model rules, and metrics."""

from __future__ import annotations

import shutil

from tests.service.conftest import ADMIN, make_settings, serve, wait_ready


def test_ready_only_once_the_default_model_is_loaded(tiny_store, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    with serve(make_settings(store)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        client.post("/models/reload", headers=ADMIN)  # waits for the lifespan's first scan too
        response = client.get("/readyz")
        assert response.status_code == 503 and response.headers["retry-after"]
        assert "'tiny'" in response.json()["detail"]
        generate = client.post("/generate?seed=1")
        assert generate.status_code == 503 and "'tiny'" in generate.json()["detail"]
        assert client.get("/models").json() == {"default": None, "default_version": None, "models": [], "failed": []}

        shutil.copytree(tiny_store / "tiny", store / "tiny")
        assert client.post("/models/reload", headers=ADMIN).json()["loaded"] == ["tiny/1"]
        ready = {"status": "ready", "model": "tiny", "version": 1, "precision": "float32"}
        assert client.get("/readyz").json() == ready
        assert client.post("/generate?seed=1").status_code == 200


def test_unset_default_falls_back_to_the_only_model(tiny_store):
    settings = make_settings(tiny_store, default_model=None)  # as if MICROGAN_DEFAULT_MODEL were never set
    assert settings.default_model == "voronoi64" and not settings.default_model_explicit
    with serve(settings) as client:
        assert wait_ready(client)["model"] == "tiny"
        assert client.get("/models").json()["default"] == "tiny"


def test_explicit_missing_default_is_not_ready(tiny_store):
    with serve(make_settings(tiny_store, default_model="voronoi64")) as client:
        client.post("/models/reload", headers=ADMIN)
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "'voronoi64'" in response.json()["detail"] and "tiny" in response.json()["detail"]
        assert client.post("/generate?seed=1").status_code == 503
        assert client.post("/generate?seed=1&model=tiny").status_code == 200  # named models still serve


def test_metrics_expose_the_named_metrics(client):
    client.post("/generate?n=3&seed=1&format=npy")
    client.post("/generate?n=0")
    text = client.get("/metrics").text
    assert 'microgan_requests_total{method="POST",route="/generate",status="200"}' in text
    assert 'microgan_requests_total{method="POST",route="/generate",status="422"}' in text
    for name in (
        "microgan_request_duration_seconds_bucket",
        "microgan_images_generated_total",
        "microgan_batch_size_bucket",
        "microgan_queue_depth",
        "microgan_forward_seconds_bucket",
    ):
        assert name in text
    assert 'microgan_model_loaded{model="tiny",precision="float32",version="1"} 1.0' in text
