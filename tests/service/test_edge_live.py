"""The edge against a real `python -m service` on loopback: a client that leaves mid-upload is not a
server error, a stalled upload is dropped with 408, and no Server banner is sent."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import running_service
from tests.service.conftest import ADMIN, API_KEY

BOUNDARY = "microgan-edge"


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    """(url, log, data dir) of a service with an empty store and a 1 s upload chunk timeout."""
    folder = tmp_path_factory.mktemp("edge-live")
    log, data = folder / "service.log", folder / "data"
    with running_service(
        log,
        probe="/healthz",
        models_dir=str(folder / "store"),
        data_dir=str(data),
        api_key=API_KEY,
        upload_chunk_timeout_s="1",
    ) as (_, url):
        yield url, log, data


def _partial_upload(url: str) -> socket.socket:
    """A socket that has sent the headers and the first 1,000 of 1,000,000 announced body bytes."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = (
        f"POST /datasets HTTP/1.1\r\nHost: {host}\r\n{'Authorization'}: {ADMIN['Authorization']}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 1000000\r\n\r\n"
    )
    part = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n\r\n'.encode()
    sock.sendall(head.encode() + part + b"PK\x03\x04" + bytes(1000 - len(part) - 4))
    return sock


def _count(url: str, status: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("microgan_requests_total{") and 'route="/datasets"' in line and f'status="{status}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_client_leaving_mid_upload_is_not_a_server_error(live):
    url, log, data = live
    before = _count(url, "499")
    _partial_upload(url).close()
    deadline = time.monotonic() + 10
    while _count(url, "499") == before:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    assert _count(url, "500") == 0
    text = log.read_text()
    assert "unhandled error" not in text and "Traceback" not in text, text
    assert not list((data / "datasets").iterdir())  # the half upload is gone


def test_stalled_upload_is_dropped_with_408(live):
    url, log, data = live
    sock = _partial_upload(url)
    started, answer = time.monotonic(), b""
    while b"stalled" not in answer:  # the server speaks first (the body never comes), then closes
        piece = sock.recv(4096)
        if not piece:
            break
        answer += piece
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"stalled" in answer and time.monotonic() - started < 10
    assert _count(url, "408") >= 1 and _count(url, "500") == 0
    assert not list((data / "datasets").iterdir())


def test_no_server_banner_and_nosniff(live):
    url, _, _ = live
    response = httpx.get(f"{url}/healthz")
    assert "server" not in response.headers and response.headers["x-content-type-options"] == "nosniff"
