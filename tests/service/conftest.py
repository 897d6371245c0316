"""Fixtures of the service tests: apps over the session's tiny store, clients, readiness waits.

One app (and one loaded model) is shared per test module; tests talk to it over HTTP through
Starlette's TestClient, which also runs the app's lifespan.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from service.main import create_app
from service.settings import Settings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")  # it would rather have httpx2
    from fastapi.testclient import TestClient


API_KEY = "test-admin-key"
ADMIN = {"Authorization": f"Bearer {API_KEY}"}  # headers of an admin request
_DATA_ROOT: list[Path] = []  # where make_settings puts each app's own data dir


@pytest.fixture(scope="session", autouse=True)
def _no_service_environment(tmp_path_factory) -> Iterator[None]:
    """The developer's MICROGAN_* variables must not leak into the apps under test."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("MICROGAN_")}
    _DATA_ROOT.append(tmp_path_factory.mktemp("data-dirs"))
    yield
    os.environ.update(saved)


def make_settings(store: Path, **overrides) -> Settings:
    """Test settings (a fresh data dir, the admin key API_KEY); an override of None leaves that field unset."""
    values = dict(models_dir=store, default_model="tiny", reload_interval=0, max_batch=8, max_delay_ms=2.0)
    values.update(api_key=API_KEY, data_dir=Path(tempfile.mkdtemp(dir=_DATA_ROOT[0])))
    values.update(overrides)
    return Settings(_env_file=None, **{k: v for k, v in values.items() if v is not None})


@contextmanager
def serve(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def wait_ready(client: TestClient, timeout: float = 60) -> dict:
    """Poll /readyz until 200 (the model loads in the background); its body."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/readyz")
        if response.status_code == 200:
            return response.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready after {timeout} s: {response.status_code} {response.text}")
        time.sleep(0.05)


def wait_until(predicate, timeout: float = 60) -> None:
    """Poll a condition set by another thread (no timing is asserted: the timeout only ends a hang)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)


def wait_job(client, job_id: str, until, timeout: float = 300, poll: float = 0.1) -> dict:
    """Poll GET /train/{id} (through a TestClient or an httpx.Client) until `until(job)`; the job."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/train/{job_id}").json()
        if until(job):
            return job
        if job["state"] in ("succeeded", "failed", "cancelled", "interrupted"):
            raise AssertionError(f"job ended {job['state']} before the awaited condition: {job}")
        if time.monotonic() > deadline:
            raise AssertionError(f"job condition not met within {timeout} s: {job}")
        time.sleep(poll)


def copy_store(source: Path, target: Path) -> Path:
    """A private, writable copy of a store (for tests that add or break versions)."""
    shutil.copytree(source, target)
    return target


@pytest.fixture(scope="module")
def client(tiny_store: Path) -> Iterator[TestClient]:
    """A ready app over the tiny store: max_batch 8, max_n 64."""
    with serve(make_settings(tiny_store, max_n=64)) as client:
        wait_ready(client)
        yield client
