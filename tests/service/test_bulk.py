"""python -m service.bulk: shards equal POST /generate's bodies, re-runs resume, bad arguments fail early."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import ENV, ROOT
from tests.service.conftest import make_settings, serve, wait_ready

SEED = 7


def _env(store: Path, **settings: str) -> dict:
    env = {k: v for k, v in ENV.items() if not k.startswith("MICROGAN_")}
    # The same forward-pass size as the `client` fixture's service (max_batch 8).
    env.update(MICROGAN_MODELS_DIR=str(store), MICROGAN_DEFAULT_MODEL="tiny", MICROGAN_MAX_BATCH="8")
    env.update({f"MICROGAN_{k.upper()}": v for k, v in settings.items()})
    return env


def bulk(store: Path, *args, **settings) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "service.bulk", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=_env(store, **settings), cwd=ROOT)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _generate(client, start: int, n: int, **params) -> bytes:
    response = client.post("/generate", params={"seed": SEED, "start": start, "n": n, **params})
    assert response.status_code == 200, response.text
    return response.content


@pytest.mark.parametrize("fmt", ["h5", "npy", "zip"])
def test_bulk_shards_are_the_bytes_of_post_generate(client, tiny_store, tmp_path, fmt):
    result = bulk(tiny_store, "--seed", SEED, "--count", 100, "--shard-size", 40, "--out", tmp_path, "--format", fmt)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["complete"] and [s["n"] for s in manifest["shards"]] == [40, 40, 20]
    assert {k: manifest[k] for k in ("model", "version", "precision", "seed", "count", "shard_size")} == {
        "model": "tiny", "version": 1, "precision": "float32", "seed": SEED, "count": 100, "shard_size": 40,
    }  # fmt: skip
    for shard in manifest["shards"]:
        body = (tmp_path / shard["file"]).read_bytes()
        assert body == _generate(client, shard["first"], shard["n"], format=fmt), shard["file"]
        assert (tmp_path / f"{shard['file']}.sha256").read_text().split()[0] == shard["sha256"]
    # Image i of the set is image i of POST /generate for that seed, whatever the paging.
    with h5py.File(io.BytesIO(_generate(client, 57, 1, format="h5"))) as one:
        image_57 = one["images"][0]
    if fmt == "npy":
        assert np.array_equal(np.load(tmp_path / "shard-00001.npy")[57 - 40], image_57)
    if fmt == "h5":
        with h5py.File(tmp_path / "shard-00001.h5") as shard:
            assert np.array_equal(shard["images"][57 - 40], image_57)


def test_bulk_labels_and_sites_are_the_models_own(client, tiny_store, tmp_path):
    result = bulk(
        tiny_store, "--seed", SEED, "--count", 30, "--shard-size", 30, "--out", tmp_path, "--labels", "--sites"
    )
    assert result.returncode == 0, result.stderr
    served = h5py.File(io.BytesIO(_generate(client, 0, 30, format="h5", labels="true")))
    geometry = json.loads(_generate(client, 0, 30, format="json"))["images"]
    with h5py.File(tmp_path / "shard-00000.h5") as shard, served:
        assert np.array_equal(shard["images"][:], served["images"][:])
        assert np.array_equal(shard["labels"][:], served["labels"][:])
        assert shard.attrs["labels_source"] == "partition" and shard.attrs["start"] == 0
        sites, weights = shard["sites"][:], shard["weights"][:]
    assert sites.shape[:2] == weights.shape and sites.shape[0] == 30
    for i, record in enumerate(geometry):  # json coordinates are rounded to 4 decimals
        assert np.allclose(record["sites"], sites[i], atol=1e-4) and np.allclose(
            record["weights"], weights[i], atol=1e-4
        )


@pytest.fixture(scope="module")
def uninterrupted(tiny_store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bulk") / "whole"
    result = bulk(tiny_store, "--seed", SEED, "--count", 24000, "--shard-size", 2000, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "images/s" in result.stderr and "ETA" in result.stderr  # one progress line per shard (no tty)
    return out


def test_bulk_killed_midway_then_rerun_gives_the_uninterrupted_bytes(tiny_store, uninterrupted, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "service.bulk", "--seed", SEED, "--count", 24000, "--shard-size", 2000]
    process = subprocess.Popen(
        [*map(str, command), "--out", str(out)], env=_env(tiny_store), cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / "shard-00001.h5.sha256").exists():
            assert process.poll() is None and time.monotonic() < deadline, "no shard written"
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    done = sorted(out.glob("shard-*.h5.sha256"))  # the manifest may lag behind by the shard being recorded
    assert 2 <= len(done) < 12, f"the kill did not land mid-way: {len(done)} of 12 shards done"
    assert not json.loads((out / "manifest.json").read_text())["complete"]
    # A finished shard damaged since: its checksum no longer verifies, so the re-run redoes it.
    with open(out / "shard-00000.h5", "r+b") as damaged:
        damaged.seek(5000)
        damaged.write(b"\xff" * 16)
    kept = out / "shard-00001.h5"
    inode = kept.stat().st_ino

    result = bulk(tiny_store, "--seed", SEED, "--count", 24000, "--shard-size", 2000, "--out", out)
    assert result.returncode == 0, result.stderr
    assert _files(out) == _files(uninterrupted)
    assert kept.stat().st_ino == inode  # verified, so not rewritten
    assert f"{len(done) - 1} of 12 shards already written and verified" in result.stderr


def test_bulk_shard_index_and_concurrent_ranges_fill_one_set(tiny_store, uninterrupted, tmp_path):
    args = ["--seed", SEED, "--count", 24000, "--shard-size", 2000, "--out", tmp_path]
    result = bulk(tiny_store, *args, "--shard-index", 11)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("shard-*.h5")) == ["shard-00011.h5"]
    assert "1 of 12 shards so far" in result.stdout
    # Two processes filling one directory at once, as the pods of the Kubernetes job do.
    command = [sys.executable, "-m", "service.bulk", *map(str, args)]
    processes = [
        subprocess.Popen([*command, "--shards", part], env=_env(tiny_store), cwd=ROOT, stderr=subprocess.PIPE)
        for part in ("0:6", "6:11")
    ]
    for process in processes:
        _, errors = process.communicate(timeout=300)
        assert process.returncode == 0, errors.decode()[-2000:]
    assert _files(tmp_path) == _files(uninterrupted)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--count", "0"], "--count must be at least 1"),
        (["--shard-size", "0"], "--shard-size must be at least 1"),
        (["--seed", "-1"], "--seed must be 0.."),
        (["--shard-index", "3"], "--shard-index 3 is outside 0..2"),
        (["--shards", "2:1"], "--shards 2:1: need 0 <= A < B <= 3"),
        (["--shards", "x"], "--shards must be A:B"),
        (["--format", "npy", "--labels"], "--labels and --sites need --format h5"),
        (["--model", "nope"], "no model 'nope'"),
        (["--version", "9"], "has no version 9"),
        (["--batch", "100000"], "max_sample_batch"),
    ],
)
def test_bulk_bad_arguments_exit_2_before_writing(tiny_store, tmp_path, args, message):
    out = tmp_path / "out"
    result = bulk(tiny_store, "--seed", SEED, "--count", 30, "--shard-size", 10, "--out", out, *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def _on_a_terminal(store: Path, *args) -> tuple[int, str]:
    """Run the command with stderr on a pseudo-terminal, as a user at a shell sees it; (status, stderr)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a new pty is 0 x 0
    command = [sys.executable, "-m", "service.bulk", *map(str, args)]
    process = subprocess.Popen(command, env=_env(store), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    return process.wait(timeout=300), output.decode(errors="replace")


def test_bulk_shows_a_progress_bar_and_refuses_a_directory_of_another_set(tiny_store, tmp_path):
    status, stderr = _on_a_terminal(tiny_store, "--seed", SEED, "--count", 20, "--shard-size", 10, "--out", tmp_path)
    assert status == 0, stderr
    # On a terminal: tqdm's bar, with the rate and the time left.
    assert re.search(r"bulk: 100%.* 20/20 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+img/s\]", stderr), stderr
    before = _files(tmp_path)
    result = bulk(tiny_store, "--seed", SEED + 1, "--count", 20, "--shard-size", 10, "--out", tmp_path)
    assert result.returncode == 2 and "holds another set: seed 7 (asked: 8)" in result.stderr, result.stderr
    assert _files(tmp_path) == before
    (tmp_path / "file").write_text("")
    result = bulk(tiny_store, "--seed", SEED, "--count", 20, "--out", tmp_path / "file")
    assert result.returncode == 2 and "is not a directory" in result.stderr


def test_bulk_sites_need_a_laguerre_model(tmp_path):
    out = tmp_path / "out"
    result = bulk(ROOT / "models_store", "--model", "voronoi64", "--version", "1", "--seed", SEED, "--count", 10,
                  "--out", out, "--sites")  # fmt: skip
    assert result.returncode == 2 and "--sites needs a laguerre model" in result.stderr, result.stderr
    assert not out.exists()


def test_bulk_grains_draws_as_post_generate_grains(tiny_grains_store, tiny_store, tmp_path):
    card = json.loads((tiny_grains_store / "grains" / "1" / "model.json").read_text())
    low, high = card["condition"]["min"], card["condition"]["max"]
    args = ["--seed", SEED, "--count", 20, "--shard-size", 12]
    result = bulk(tiny_grains_store, "--model", "grains", *args, "--grains", high, "--out", tmp_path / "set")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "set" / "manifest.json").read_text())["grains"] == high
    with serve(make_settings(tiny_grains_store, default_model="grains", max_n=64)) as client:
        wait_ready(client)
        for index, (start, n) in enumerate([(0, 12), (12, 8)]):
            body = _generate(client, start, n, format="h5", grains=high)
            assert (tmp_path / "set" / f"shard-0000{index}.h5").read_bytes() == body
    for store, model, grains, message in [
        (tiny_grains_store, "grains", high + 1, "outside the range"),
        (tiny_store, "tiny", low, "takes no grains"),
    ]:
        result = bulk(store, "--model", model, *args, "--grains", grains, "--out", tmp_path / model)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert not (tmp_path / model).exists()


def test_bulk_never_imports_training(tiny_store, tmp_path):
    program = (
        "import json, sys\nfrom service.bulk import main\ncode = main(sys.argv[1:])\n"
        "print(json.dumps({'code': code, 'modules': sorted({m.split('.')[0] for m in sys.modules})}))"
    )
    args = ["--seed", SEED, "--count", 20, "--shard-size", 10, "--out", tmp_path, "--labels", "--sites"]
    command = [sys.executable, "-c", program, *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=_env(tiny_store), cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0 and "service" in report["modules"] and "training" not in report["modules"]
