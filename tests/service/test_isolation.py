"""The service never imports the training code: it meets training through files and child processes."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ENV, ROOT

# Serves the tiny model through the app (lifespan, model load, batcher), generates in several formats,
# lists models and jobs, then reports which top-level packages were imported.
_PROGRAM = """
import json, sys, tempfile
from pathlib import Path
from fastapi.testclient import TestClient
from service.main import create_app
from service.settings import Settings

settings = Settings(_env_file=None, models_dir=Path(sys.argv[1]), default_model="tiny", reload_interval=0,
                    data_dir=Path(tempfile.mkdtemp()), api_key="k")
with TestClient(create_app(settings)) as client:
    import time
    while client.get("/readyz").status_code != 200:
        time.sleep(0.05)
    statuses = [client.post("/generate", params={"n": 4, "seed": 1, "format": fmt}).status_code
                for fmt in ("zip", "npy", "h5", "json", "svg")]
    statuses += [client.get(path).status_code for path in ("/models", "/models/tiny/1", "/train", "/datasets")]
print(json.dumps({"statuses": statuses, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def test_serving_never_imports_training(tiny_store):
    result = subprocess.run(
        [sys.executable, "-c", _PROGRAM, str(tiny_store)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["statuses"] == [200] * 9
    assert "service" in report["modules"] and "training" not in report["modules"]
