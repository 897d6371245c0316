"""Hostile uploads: decompression bombs and lying archives refused with 422 and nothing stored, under the
operator's limits (MICROGAN_MAX_DATASET_BYTES / _IMAGES), with the validation's peak memory measured."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import ENV, ROOT
from tests.hostile import bzip2_zip, h5_declaring, run_measured
from tests.service.conftest import make_settings, serve
from tests.service.test_datasets import stored, upload
from training.sources import MEMORY_BOUND


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, request) -> dict[str, tuple[Path, str]]:
    """name -> (file, a fragment of the reason it is refused for)."""
    folder = tmp_path_factory.mktemp("hostile")
    return {
        "bomb.zip": (bzip2_zip(folder / "bomb.zip", request.config.cache), "ratio above 1000"),
        "liar.zip": (bzip2_zip(folder / "liar.zip", request.config.cache, honest=False), "longer than its declared"),
        "bomb.h5": (h5_declaring(folder / "bomb.h5", (60000, 64, 64)), "compression bomb"),
    }


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with serve(make_settings(tmp_path_factory.mktemp("hostile-store"), default_model="custom")) as client:
        yield client


@pytest.mark.parametrize("name", ["bomb.zip", "liar.zip", "bomb.h5"])
def test_hostile_upload_is_422_with_the_reason_and_nothing_is_stored(client, hostile, name):
    path, reason = hostile[name]
    response = upload(client, name, path.read_bytes())
    assert response.status_code == 422, response.text
    message = response.json()["detail"][0]["msg"]
    assert message.startswith(name) and reason in message and "/datasets/" not in message, message
    assert stored(client) == []


def _h5(count: int) -> bytes:
    buffer = io.BytesIO()
    images = np.zeros((count, 64, 64), np.uint8)
    images[:, 10, :] = 255
    with h5py.File(buffer, "w") as handle:
        handle.create_dataset("images", data=images)
    return buffer.getvalue()


def test_operator_limits_reach_the_validation(tmp_path):
    with serve(make_settings(tmp_path, default_model="custom", max_dataset_images=2000)) as client:
        response = upload(client, "many.h5", _h5(3000))
        assert response.status_code == 422 and "above the limit of 2000" in response.text, response.text
        assert upload(client, "some.h5", _h5(2000)).status_code == 201
    with serve(make_settings(tmp_path, default_model="custom", max_dataset_bytes=1_000_000)) as client:
        response = upload(client, "big.h5", _h5(300))
        assert response.status_code == 422 and "above the limit of 1000000" in response.text, response.text


_VALIDATE = """
import json, resource, shutil, sys
from pathlib import Path
from service.datasets import DatasetStore
from service.errors import DatasetRejected
store = DatasetStore(Path(sys.argv[1]))
store.start()
for path in map(Path, sys.argv[2:]):
    upload = store.new_upload()
    shutil.copy(path, upload / "upload")
    try:
        store.commit(upload, path.name)
        print(json.dumps({"name": path.name, "accepted": True}))
    except DatasetRejected as error:
        print(json.dumps({"name": path.name, "accepted": False, "reason": str(error)}))
print(json.dumps({"peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""


def test_validation_of_hostile_uploads_stays_under_the_memory_bound(tmp_path, hostile):
    # The service's own validation path (DatasetStore.commit runs `python -m training inspect` with the
    # default limits), from a fresh interpreter whose only children are those validations.
    files = [str(path) for path, _ in hostile.values()]
    result = run_measured([sys.executable, "-c", _VALIDATE, str(tmp_path / "data"), *files], ENV, ROOT, timeout=600)
    assert result["code"] == 0, result["stderr"]
    lines = [json.loads(line) for line in result["stdout"].splitlines()]
    assert [line["accepted"] for line in lines[:-1]] == [False, False, False]
    peak = lines[-1]["peak"]
    print(f"peak resident memory of the validations: {peak / 2**20:.0f} MiB (bound {MEMORY_BOUND / 2**20:.0f} MiB)")
    assert peak < MEMORY_BOUND
