"""POST /generate over HTTP: formats, determinism, paging, batching invariance and every error status."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pytest
from PIL import Image

from microstructure.boundaries import draw_boundaries
from service.deps import get_generator
from tests.service.conftest import make_settings, serve, wait_ready, wait_until


def images_of(response) -> np.ndarray:
    """Decode any image format of /generate into uint8 (n, 64, 64)."""
    media = response.headers["content-type"]
    if media == "application/zip":
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            names = json.loads(archive.read("manifest.json"))["files"]
            return np.stack([np.asarray(Image.open(io.BytesIO(archive.read(name)))) for name in names])
    if media == "application/octet-stream":
        return np.load(io.BytesIO(response.content))
    if media == "application/x-hdf5":
        with h5py.File(io.BytesIO(response.content), "r") as file:
            return file["images"][()]
    return np.asarray(Image.open(io.BytesIO(response.content)))[None]


def generate(client, **params):
    response = client.post("/generate", params=params)
    assert response.status_code == 200, response.text
    return response


def test_png_is_one_grayscale_image_with_headers(client):
    response = generate(client, seed=7)
    image = Image.open(io.BytesIO(response.content))
    assert (image.mode, image.size) == ("L", (64, 64))
    assert response.headers["x-seed"] == "7"
    assert (response.headers["x-model"], response.headers["x-model-version"]) == ("tiny", "1")
    assert response.headers["x-precision"] == "float32"
    assert response.headers["content-disposition"] == 'inline; filename="tiny-v1-s7-00000.png"'


def test_zip_holds_named_pngs_and_manifest(client):
    response = generate(client, n=5, seed=3, start=10)
    assert response.headers["content-type"] == "application/zip"  # the default for n > 1
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert archive.namelist() == ["manifest.json"] + [f"tiny-v1-s3-{i:05d}.png" for i in range(10, 15)]
    assert {k: manifest[k] for k in ("model", "version", "seed", "start", "n", "precision")} == {
        "model": "tiny",
        "version": 1,
        "seed": 3,
        "start": 10,
        "n": 5,
        "precision": "float32",
    }
    assert images_of(response).shape == (5, 64, 64)


def test_npy_h5_and_grid_decode_with_the_same_images(client):
    reference = images_of(generate(client, n=6, seed=5, format="zip"))
    assert np.array_equal(images_of(generate(client, n=6, seed=5, format="npy")), reference)

    response = generate(client, n=6, seed=5, format="h5", labels="true")
    with h5py.File(io.BytesIO(response.content), "r") as file:
        assert np.array_equal(file["images"][()], reference)
        assert file["labels"].dtype == np.uint16 and file["labels"].shape == (6, 64, 64)
        attrs = file.attrs
        assert (attrs["model"], attrs["version"], attrs["seed"], attrs["z_dim"]) == ("tiny", 1, 5, 16)

    mosaic = np.asarray(Image.open(io.BytesIO(generate(client, n=6, seed=5, format="grid").content)))
    assert mosaic.shape == (2 + 2 * 66, 2 + 3 * 66)  # 3 columns x 2 rows of 64 px with 2 px frames
    assert np.array_equal(mosaic[2:66, 2:66], reference[0])


def test_h5_labels_of_a_partition_model_are_its_own_grains(client):
    with h5py.File(io.BytesIO(generate(client, n=6, seed=5, format="h5", labels="true").content), "r") as file:
        images, labels = file["images"][()], file["labels"][()]
        assert file.attrs["labels_source"] == "partition"
    # Every pixel belongs to a grain; the grains drawn with the dataset's rule are the images exactly.
    assert labels.min() >= 1 and np.array_equal(draw_boundaries(labels), images)
    for image in labels:  # numbered 1..k in raster order of each grain's first pixel
        firsts = [int(np.flatnonzero(image == grain)[0]) for grain in range(1, image.max() + 1)]
        assert firsts == sorted(firsts) and image.flat[0] == 1


def test_h5_labels_of_a_pixel_model_segment_its_images():
    """The shipped image-head model (voronoi64 v1) has no partition: labels come from segmentation."""
    from pathlib import Path

    from microstructure.stats import segment

    with serve(make_settings(Path(__file__).parents[2] / "models_store", default_model="voronoi64")) as client:
        wait_ready(client)
        # Ready means the default (latest) version is loaded; version 1 follows in the same scan.
        wait_until(lambda: 1 in client.get("/models").json()["models"][0]["versions"])
        response = generate(client, n=4, seed=5, format="h5", labels="true", model="voronoi64", version=1)
    with h5py.File(io.BytesIO(response.content), "r") as file:
        assert file.attrs["labels_source"] == "segmentation"
        assert np.array_equal(file["labels"][()], segment(file["images"][()]))


@pytest.mark.parametrize("fmt", ["png", "zip", "h5", "npy", "grid"])
def test_same_request_gives_identical_bytes(client, fmt):
    params = dict(n=1 if fmt == "png" else 9, seed=11, format=fmt)
    assert generate(client, **params).content == generate(client, **params).content


def test_prefix_and_start_paging_give_the_same_images(client):
    full = images_of(generate(client, n=20, seed=42, format="npy"))
    assert np.array_equal(images_of(generate(client, n=7, seed=42, format="npy")), full[:7])
    pages = [images_of(generate(client, n=5, seed=42, start=s, format="npy")) for s in range(0, 20, 5)]
    assert np.array_equal(np.concatenate(pages), full)
    assert np.array_equal(images_of(generate(client, seed=42, start=13)), full[13:14])
    assert not np.array_equal(full, images_of(generate(client, n=20, seed=43, format="npy")))


def test_random_seed_is_returned_and_reproduces(client):
    first = generate(client, n=3)
    again = generate(client, n=3, seed=first.headers["x-seed"])
    assert np.array_equal(images_of(first), images_of(again))


@pytest.mark.parametrize("pad", [True, False], ids=["padded", "unpadded"])
def test_concurrent_requests_merged_into_passes_give_the_one_at_a_time_images(tiny_store, pad):
    """Requests of different seeds and sizes are forced to share forward passes; images don't change.

    Padded passes (one fixed shape) are bit-identical by construction; unpadded ones are held to the
    sample signature's stated exactness: at most 0.1% of pixels off, by one grey level.
    """
    requests = [
        dict(seed=s, n=n, start=st, format="npy")
        for s, n, st in [(1, 1, 0), (2, 3, 5), (3, 1, 9), (4, 12, 0), (5, 2, 1), (6, 1, 0), (7, 5, 3)]
    ]
    # One worker: the gated first pass then holds back every later one until all are queued.
    settings = make_settings(tiny_store, max_batch=8, max_delay_ms=50, pad_batches=pad, batch_workers=1)
    with serve(settings) as client:
        wait_ready(client)
        alone = [images_of(generate(client, **r)) for r in requests]

        # Hold the first forward pass until every other request is queued, so they must be merged.
        real = client.app.state.registry.get("tiny", 1)
        gate, calls = threading.Event(), []

        class Gated:
            name, version, z_dim, precision = real.name, real.version, real.z_dim, real.precision

            def __call__(self, seeds, indices):
                calls.append(len(set(seeds[seeds > 0].tolist())))
                gate.wait(60)
                return real(seeds, indices)

        gated = Gated()
        client.app.dependency_overrides[get_generator] = lambda: gated
        batcher = client.app.state.batcher
        with ThreadPoolExecutor(len(requests) + 1) as pool:
            first = pool.submit(generate, client, seed=99, n=1, start=1, format="npy")
            wait_until(lambda: calls)
            futures = [pool.submit(generate, client, **r) for r in requests]
            try:
                wait_until(lambda: batcher.depth == sum(r["n"] for r in requests))
            finally:
                gate.set()
            together = [images_of(f.result()) for f in futures]
            first.result()
        client.app.dependency_overrides.clear()

    assert max(calls) > 1  # some pass really held images of several seeds
    for a, b in zip(alone, together):
        if pad:
            assert np.array_equal(a, b)
        else:
            difference = np.abs(a.astype(int) - b.astype(int))
            assert difference.max() <= 1 and np.mean(difference > 0) <= 0.001


def test_several_workers_under_load_give_the_one_at_a_time_bytes(tiny_store):
    """Passes of a small block on 3 workers, from 24 concurrent requests of mixed n, seeds and formats."""
    shapes = [(1, "png"), (3, "zip"), (11, "npy"), (20, "zip")]
    requests = [{"seed": i + 1, "n": shapes[i % 4][0], "start": i % 5, "format": shapes[i % 4][1]} for i in range(24)]
    with serve(make_settings(tiny_store, max_batch=4, max_delay_ms=1, batch_workers=3)) as client:
        wait_ready(client)
        alone = [generate(client, **r).content for r in requests]
        with ThreadPoolExecutor(len(requests)) as pool:
            together = list(pool.map(lambda r: generate(client, **r).content, requests))
        metrics = client.get("/metrics").text
    assert together == alone
    passes = [line for line in metrics.splitlines() if line.startswith("microgan_batch_size_count")]
    assert passes and float(passes[0].split()[-1]) > 50  # many passes of 4 rows really ran


@pytest.mark.parametrize(
    "query, status",
    [
        ("n=0", 422),
        ("n=abc", 422),
        ("seed=-1", 422),
        (f"seed={2**63}", 422),
        ("start=-5", 422),
        (f"n=2&start={2**63 - 1}", 422),
        ("format=gif", 422),
        ("n=2&format=png", 422),
        ("labels=true", 422),
        ("version=-1", 422),
        ("n=65", 413),
        (f"n={10**30}", 413),
        ("model=nope", 404),
        ("version=7", 404),
    ],
)
def test_bad_requests_get_json_errors(client, query, status):
    response = client.post(f"/generate?{query}")
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"]


def test_png_for_many_images_says_what_to_use(client):
    detail = client.post("/generate?n=3&format=png").json()["detail"][0]
    assert detail["loc"] == ["query", "format"] and "zip" in detail["msg"] and "grid" in detail["msg"]


def test_full_queue_answers_503_with_retry_after(tiny_store):
    # One worker, held in its pass: the next request then waits in the queue.
    with serve(make_settings(tiny_store, max_batch=8, max_n=8, queue_limit=8, batch_workers=1)) as client:
        wait_ready(client)
        real = client.app.state.registry.get("tiny", 1)
        gate, started = threading.Event(), threading.Event()

        def held(seeds, indices):
            started.set()
            gate.wait(60)
            return real(seeds, indices)

        held.name, held.version, held.z_dim, held.precision = "tiny", 1, 16, "float32"
        client.app.dependency_overrides[get_generator] = lambda: held
        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(generate, client, n=8, seed=1, format="npy")  # in the worker, held
            started.wait(60)
            waiting = pool.submit(generate, client, n=8, seed=2, format="npy")  # fills the queue
            try:
                wait_until(lambda: client.app.state.batcher.depth == 8)
                response = client.post("/generate?seed=3")
            finally:
                gate.set()
            assert running.result().status_code == waiting.result().status_code == 200
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "busy" in response.json()["detail"]
