"""Tessellation models over HTTP: any size, grain polygons as JSON, SVG, labels at size; errors before work."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from microstructure.boundaries import draw_boundaries
from microstructure.tessellation import rasterise
from tests.service.conftest import make_settings, serve, wait_ready, wait_until

REPO_STORE = Path(__file__).parents[2] / "models_store"


def _post(client, status: int = 200, **params):
    response = client.post("/generate", params=params)
    assert response.status_code == status, response.text
    return response


def _png(response) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_json_gives_each_images_grains_in_pixels_of_the_size(client):
    body = _post(client, n=3, seed=4, format="json", size=128).json()
    assert {k: body[k] for k in ("model", "version", "seed", "start", "n", "size", "width")} == {
        "model": "tiny", "version": 1, "seed": 4, "start": 0, "n": 3, "size": 128, "width": 2,
    }  # fmt: skip
    small = _post(client, n=3, seed=4, format="json").json()
    for large, base in zip(body["images"], small["images"]):
        assert sum(g["area"] for g in large["grains"]) == pytest.approx(128 * 128, rel=1e-6)
        assert [g["site"] for g in large["grains"]] == [g["site"] for g in base["grains"]]
        assert np.allclose(np.array(large["sites"]), 2 * np.array(base["sites"]), atol=1e-3)
        assert [g["area"] for g in large["grains"]] == pytest.approx([4 * g["area"] for g in base["grains"]], rel=1e-4)
        for grain in large["grains"]:
            assert {"polygon", "centroid", "perimeter", "neighbours", "shared"} <= set(grain)
            assert len(grain["neighbours"]) == len(grain["shared"])
    # Pages by start like the images: images 1 and 2 of the seed are the same records.
    page = _post(client, n=2, seed=4, start=1, format="json", size=128).json()
    assert page["images"] == body["images"][1:]


def test_every_format_and_size_draws_the_same_microstructure(client):
    geometry = _post(client, n=2, seed=6, format="json").json()["images"]
    own = _post(client, n=2, seed=6, format="npy")
    # size 64 at the model's width is the model's own sample; other sizes rasterise its geometry.
    same = _post(client, n=2, seed=6, format="npy", size=64, width=2)
    assert same.content == own.content
    large = np.load(io.BytesIO(_post(client, n=2, seed=6, format="npy", size=256).content))
    for image, record in zip(large, geometry):
        labels = rasterise(np.array(record["sites"]) * 4, np.array(record["weights"]) * 16, 256)
        assert np.mean(draw_boundaries(labels[None])[0] != image) <= 0.001  # rounding of the JSON's 4 decimals
    one = _png(_post(client, n=1, seed=6, start=1, size=256, width=5))
    assert one.shape == (256, 256) and (one == 255).mean() > (large[1] == 255).mean()  # wider boundaries
    with h5py.File(io.BytesIO(_post(client, n=2, seed=6, format="h5", labels="true", size=256).content)) as file:
        assert np.array_equal(file["images"][()], large)
        assert np.array_equal(draw_boundaries(file["labels"][()]), large)
        assert file.attrs["labels_source"] == "partition"


def test_svg_draws_each_boundary_once_as_vector_paths(client):
    (record,) = _post(client, n=1, seed=8, format="json", size=512).json()["images"]
    response = _post(client, n=1, seed=8, format="svg", size=512)
    assert response.headers["content-type"] == "image/svg+xml"
    text = response.text
    assert text.startswith('<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512"')
    segments = len(re.findall(r"M[-\d.]+ [-\d.]+L", text))
    edges = sum(1 for g in record["grains"] for n in g["neighbours"] if n > g["site"])
    assert segments >= edges > 0  # at least one segment per shared edge (an edge may bend only at vertices)
    archive = zipfile.ZipFile(io.BytesIO(_post(client, n=3, seed=8, format="svg").content))
    assert archive.namelist() == ["manifest.json"] + [f"tiny-v1-s8-{i:05d}.svg" for i in range(3)]
    mosaic = _post(client, n=3, seed=8, format="svg", grid="true").text
    assert mosaic.count("<g transform") == 3 and 'width="134"' in mosaic  # 2 columns of 64 px, 2 px frames


def test_geometry_requests_fail_clearly_before_any_work(tiny_store):
    with serve(make_settings(tiny_store, max_render_bytes=4 * 256 * 256)) as client:
        wait_ready(client)
        detail = _post(client, 413, n=5, seed=1, size=256, format="npy").json()["detail"]
        assert "max_render_bytes=262144" in detail
        _post(client, 200, n=4, seed=1, size=256, format="npy")
        _post(client, 200, n=500, seed=1, format="json")  # JSON is not an image: the limit is n's
        for params, field in (
            (dict(size=4096), "size"),
            (dict(size=32), "size"),
            (dict(size=128, width=33), "width"),
            (dict(format="png", grid="true"), "grid"),
        ):
            body = _post(client, 422, seed=1, **params).json()
            assert body["detail"][0]["loc"] == ["query", field], body
        assert "leaves no grain interior" in _post(client, 422, seed=1, width=17).json()["detail"][0]["msg"]


def test_pixel_models_answer_422_and_the_listing_says_which_have_a_tessellation():
    with serve(make_settings(REPO_STORE, default_model="voronoi64")) as client:
        wait_ready(client)
        # Ready means the default (latest) version is loaded; version 1 follows in the same scan.
        wait_until(lambda: 1 in client.get("/models").json()["models"][0]["versions"])
        listing = {m["name"]: m for m in client.get("/models").json()["models"]}
        v1 = {"model": "voronoi64", "version": 1}
        for params in (dict(format="json"), dict(format="svg"), dict(size=128), dict(width=3)):
            message = _post(client, 422, seed=1, **v1, **params).json()["detail"][0]["msg"]
            assert "has no tessellation (image head)" in message
    assert listing["voronoi64"]["tessellation"] == (listing["voronoi64"]["head"] == "laguerre")


def test_openapi_publishes_the_geometry_schema(client):
    schema = client.get("/openapi.json").json()
    geometry = schema["components"]["schemas"]["GeometryResponse"]
    assert {"images", "size", "width"} <= set(geometry["properties"])
    assert {"polygon", "neighbours", "shared", "perimeter"} <= set(
        schema["components"]["schemas"]["GrainGeometry"]["properties"]
    )
    parameters = {p["name"] for p in schema["paths"]["/generate"]["post"]["parameters"]}
    assert {"size", "width", "grid"} <= parameters
    json.dumps(schema)  # serialisable as published


def test_docs_mesh_example_runs_on_the_services_json(client, tmp_path, monkeypatch):
    """docs/service.md's "from generator to mesh" snippet, run as written on a format=json response."""
    readme = (Path(__file__).parents[2] / "docs" / "service.md").read_text()
    code = re.search(r"From generator to mesh.*?```python\n(.*?)```", readme, flags=re.S).group(1)
    (tmp_path / "grains.json").write_bytes(_post(client, n=4, seed=7, format="json", size=512).content)
    monkeypatch.chdir(tmp_path)
    import matplotlib

    matplotlib.use("Agg")
    exec(compile(code, "docs/service.md", "exec"), {})
    assert Image.open(tmp_path / "grains.png").size[0] > 100
