"""Fixtures shared by the whole suite: a small synthetic dataset and one tiny trained run.

The tiny run is trained once per session through the CLI, as a user would, and reused by every test
that needs a trained model (export, evaluation, the service).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}


def run_cli(
    *args: str, timeout: float = 300, check: bool = False, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m <args>` the way a user would; returns the finished process."""
    result = subprocess.run(
        [sys.executable, "-m", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        cwd=cwd or ROOT,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def start_cli(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
        cwd=cwd or ROOT,
    )


@pytest.fixture(scope="session")
def synthetic_zip(tmp_path_factory) -> Path:
    """512 synthetic Voronoi images in the original's zip-of-H5 format."""
    from training.synthetic import write_zip
    from training.voronoi import VoronoiSpec

    path = tmp_path_factory.mktemp("data") / "voronoi.zip"
    write_zip(path, VoronoiSpec(), count=512, seed=11)
    return path


@pytest.fixture(scope="session")
def real_images() -> np.ndarray:
    """Synthetic 'real' uint8 images for statistics tests."""
    from training.voronoi import VoronoiSpec, generate

    return generate(VoronoiSpec(), 256, np.random.default_rng(21))[0]


TINY_STEPS = 120


def train_tiny(run_dir: Path, data: Path, *settings: str) -> Path:
    """Train the `tiny` preset through the CLI with these `--set KEY=VALUE` settings; the run directory."""
    sets = [arg for setting in settings for arg in ("--set", setting)]
    run_cli("training", "train", "--data", data, "--run-dir", run_dir, "--preset", "tiny", *sets, check=True)
    return run_dir


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, synthetic_zip) -> Path:
    """A finished `tiny` run of TINY_STEPS steps with an in-training evaluation, trained via the CLI."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    return train_tiny(run_dir, synthetic_zip, f"total_steps={TINY_STEPS}", "eval_interval=60", "seed=5")


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, tiny_run) -> Path:
    """A models_store holding the tiny run exported (via the CLI) as `tiny` version 1."""
    store = tmp_path_factory.mktemp("store")
    run_cli("training", "export", "--run-dir", tiny_run, "--store", store, "--name", "tiny", check=True)
    return store


@pytest.fixture(scope="session")
def tiny_grains_run(tmp_path_factory, synthetic_zip) -> Path:
    """A finished `tiny` run conditioned on grains per image (condition=grains), trained via the CLI."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny-grains"
    return train_tiny(run_dir, synthetic_zip, "condition=grains", "total_steps=60", "seed=6")


@pytest.fixture(scope="session")
def tiny_grains_store(tmp_path_factory, tiny_grains_run) -> Path:
    """A models_store holding the conditional tiny run exported as `grains` version 1."""
    store = tmp_path_factory.mktemp("store")
    run_cli("training", "export", "--run-dir", tiny_grains_run, "--store", store, "--name", "grains", check=True)
    return store


def free_port() -> int:
    """A free TCP port on loopback (the only address tests serve on)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(
    url: str, process: subprocess.Popen, timeout: float, describe=lambda: "", probe: str = "/readyz"
) -> None:
    """Poll `url` + `probe` until it answers 200; fail early if the process exits or time runs out."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"exited {process.returncode}: {describe()}"
        try:
            with urllib.request.urlopen(f"{url}{probe}", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"not ready within {timeout} s: {describe()}"
        time.sleep(0.25)


def start_service(log: Path, **settings: str) -> tuple[subprocess.Popen, str]:
    """`python -m service` on a free loopback port, settings given as MICROGAN_<NAME> values.

    Only the given settings apply (none is inherited from the caller's environment); output goes to
    `log`, the working directory is its folder. Returns the process and its base URL.
    """
    port = free_port()
    env = {k: v for k, v in ENV.items() if not k.startswith("MICROGAN_")}
    env.update({f"MICROGAN_{name.upper()}": value for name, value in settings.items()})
    env.update(MICROGAN_HOST="127.0.0.1", MICROGAN_PORT=str(port))
    with open(log, "a") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"], cwd=log.parent, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    return process, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def running_service(
    log: Path, probe: str = "/readyz", timeout: float = 120, **settings: str
) -> Iterator[tuple[subprocess.Popen, str]]:
    """`start_service`, then wait until `probe` answers 200 (`/healthz`: up, maybe without a model);
    (process, base URL). At the end SIGTERM if it still runs (SIGKILL after 120 s); the caller may
    check `process.returncode` afterwards. The one way tests start a service process."""
    process, url = start_service(log, **settings)
    try:
        wait_ready(url, process, timeout, describe=lambda: log.read_text()[-3000:], probe=probe)
        yield process, url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
