"""`python -m service` as a real process on a loopback port, and a schemathesis fuzz of its OpenAPI schema."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ENV, running_service


@pytest.fixture(scope="module")
def live_url(tiny_store, tmp_path_factory) -> Iterator[str]:
    """A `python -m service` process over the tiny store, ready; stopped with SIGTERM afterwards."""
    # No MICROGAN_DEFAULT_MODEL: the store's only model is served. The cwd has no .env.
    log = tmp_path_factory.mktemp("service") / "service.log"
    with running_service(log, timeout=90, models_dir=str(tiny_store), max_n="16", reload_interval="0") as (
        process,
        url,
    ):
        yield url
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells why it stopped.
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()


def test_python_m_service_serves_the_only_model_on_loopback(live_url):
    assert httpx.get(f"{live_url}/readyz").json()["model"] == "tiny"
    response = httpx.post(f"{live_url}/generate", params={"n": 4, "seed": 7})
    assert response.status_code == 200 and response.headers["x-seed"] == "7"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert len(archive.namelist()) == 5
    assert httpx.post(f"{live_url}/generate", params={"n": 17}).status_code == 413


# Semantic rules the schema cannot state (png needs n=1, n <= max_n, labels need h5) answer 413/422 to
# inputs the schema allows, so "positive data accepted" is not checked; the other response checks are.
FUZZ_CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
    "response_schema_conformance,negative_data_rejection,unsupported_method"
)


def test_fuzzed_requests_get_no_5xx_and_follow_the_schema(live_url, tmp_path):
    """Property-based fuzz of every operation in /openapi.json, bounded in examples and time."""
    pytest.importorskip("schemathesis")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{live_url}/openapi.json",
            "--checks",
            FUZZ_CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "100",
            "--workers",
            "1",
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=ENV,  # the time bound
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
