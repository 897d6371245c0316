"""Training jobs over HTTP: the lifecycle of a tiny synthetic job, the queue, cancel, bad requests, and
a real `python -m service` stopped (SIGTERM) or killed (SIGKILL) while a job trains.

Jobs run the real training CLI (`tiny` preset, a few hundred synthetic images), so each takes seconds.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import running_service
from tests.service.conftest import ADMIN, API_KEY, make_settings, serve, wait_job

SYNTHETIC = {"synthetic": {"count": 256, "seed": 3}}
TINY = {"dataset": SYNTHETIC, "preset": "tiny", "config": {"total_steps": 30}, "activate": True}


def running_with_progress(job: dict, step: int = 1) -> bool:
    return job["state"] == "running" and (job["progress"] or {}).get("step", 0) >= step


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """An app with an empty, writable store; jobs export into it as `custom`."""
    store = tmp_path_factory.mktemp("jobs-store")
    with serve(make_settings(store, default_model="custom")) as client:
        yield client


def test_job_lifecycle_queued_running_succeeded_then_served(client):
    response = client.post("/train", json=TINY, headers=ADMIN)
    assert response.status_code == 202
    job = response.json()
    assert job["state"] == "queued" and response.headers["location"] == job["links"]["self"]
    assert job["resolved_config"]["total_steps"] == 30 and job["resolved_config"]["g_filters"] == [16, 8, 8]

    # While it runs: progress and the latest preview frame.
    running = wait_job(client, job["id"], running_with_progress)
    progress = running["progress"]
    assert progress["total_steps"] == 30 and progress["d_loss"] is not None and progress["eta_s"] is not None
    preview = client.get(job["links"]["preview"])
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(preview.content)).mode == "L"

    # The event stream runs until the job ends, and ends with the whole job.
    stream = client.get(job["links"]["events"])
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = [block.split("\n", 1) for block in stream.text.strip().split("\n\n") if block.startswith("event:")]
    names = [head.removeprefix("event: ") for head, _ in events]
    assert names[-1] == "end" and set(names[:-1]) <= {"progress"}
    assert all(json.loads(data.removeprefix("data: "))["state"] == "running" for _, data in events[:-1])
    done = json.loads(events[-1][1].removeprefix("data: "))
    assert done["state"] == "succeeded"

    # Afterwards: the record, the images, and the new version served as the default.
    assert [change["state"] for change in done["history"]] == ["queued", "running", "succeeded"]
    assert done["exported"] == {"model": "custom", "version": 1, "activated": True}
    assert done["progress"]["step"] == 30 and done["exit_status"] == 0 and done["error"] is None
    assert done["started"] and done["finished"] and done["log_tail"] is None  # the tail needs the key
    assert client.get(f"/train/{job['id']}", headers=ADMIN).json()["log_tail"]
    assert client.get(job["links"]["animation"]).headers["content-type"] == "image/gif"
    assert client.get(job["links"]["losses"]).headers["content-type"] == "image/png"
    models = client.get("/models").json()
    assert (models["default"], models["default_version"]) == ("custom", 1)
    generated = client.post("/generate?seed=3")
    assert generated.status_code == 200 and generated.headers["x-model"] == "custom"
    assert client.get("/train").json()[0]["id"] == job["id"]
    assert client.post(f"/train/{job['id']}/resume", headers=ADMIN).status_code == 409
    assert client.post(f"/train/{job['id']}/cancel", headers=ADMIN).status_code == 409


def test_queue_is_fifo_and_cancel_stops_queued_and_running_jobs(client):
    long = client.post("/train", json={**TINY, "config": {"total_steps": 100_000}}, headers=ADMIN).json()
    queued = client.post("/train", json=TINY, headers=ADMIN).json()
    assert [job["id"] for job in client.get("/train").json()[:2]] == [queued["id"], long["id"]]  # newest first

    # One job at a time: the second waits for the first, and can be cancelled while it waits.
    running = wait_job(client, long["id"], running_with_progress)
    assert client.get(f"/train/{queued['id']}").json()["state"] == "queued"
    animation = client.get(long["links"]["animation"])  # the trainer rewrites it with every frame
    assert animation.status_code == 200 and animation.headers["content-type"] == "image/gif"
    cancelled = client.post(f"/train/{queued['id']}/cancel", headers=ADMIN).json()
    assert cancelled["state"] == "cancelled"
    assert client.delete(f"/train/{long['id']}", headers=ADMIN).status_code == 409  # still running

    # A running job gets SIGTERM, checkpoints and ends cancelled.
    assert client.post(f"/train/{long['id']}/cancel", headers=ADMIN).status_code == 202
    ended = wait_job(client, long["id"], lambda job: job["state"] == "cancelled", timeout=120)
    assert ended["exit_status"] == 143 and ended["progress"]["step"] >= running["progress"]["step"]
    assert [change["state"] for change in ended["history"]] == ["queued", "running", "cancelled"]
    run_dir = Path(client.app.state.settings.data_dir) / "jobs" / long["id"] / "run"
    assert list((run_dir / "checkpoints").glob("ckpt-*.npz"))
    assert client.post(f"/train/{long['id']}/cancel", headers=ADMIN).status_code == 409

    # Finished jobs can be deleted, run directory and all.
    for job in (long, queued):
        assert client.delete(f"/train/{job['id']}", headers=ADMIN).status_code == 204
        assert client.get(f"/train/{job['id']}").status_code == 404
    assert not run_dir.parent.exists()


def test_trainer_failure_is_recorded_with_exit_status_error_and_log_tail(client):
    # Only the data tells that its images hold more grains than 4 sites can draw: the trainer refuses
    # it (exit 2) once it has counted them, after the submission's dry run passed.
    request = {**TINY, "dataset": {"synthetic": {"count": 64, "seed": 1}}}
    request["config"] = {**TINY["config"], "condition": "grains", "g_sites": 4}
    job = client.post("/train", json=request, headers=ADMIN).json()
    failed = wait_job(client, job["id"], lambda job: job["state"] == "failed")
    assert failed["exit_status"] == 2 and "g_sites" in failed["error"]
    assert failed["progress"] is None and failed["exported"] is None
    assert client.get(failed["links"]["preview"]).status_code == 404

    # The log's tail only with the admin key; without it, the error is one line with no server path.
    assert failed["log_tail"] is None
    assert client.get(f"/train/{job['id']}", headers=ADMIN).json()["log_tail"]
    data_dir = str(client.app.state.settings.data_dir.resolve())
    public = [failed["error"], *(change["detail"] or "" for change in failed["history"])]
    assert all(data_dir not in text and "\n" not in text for text in public), public
    assert data_dir in client.get(f"/train/{job['id']}", headers=ADMIN).text

    # A failed job may be resumed (here it fails again, for the same reason) and then deleted.
    assert client.post(f"/train/{job['id']}/resume", headers=ADMIN).json()["state"] == "queued"
    again = wait_job(client, job["id"], lambda job: job["state"] == "failed" and len(job["history"]) > 3)
    assert [change["state"] for change in again["history"]] == ["queued", "running", "failed"] * 2
    assert client.delete(f"/train/{job['id']}", headers=ADMIN).status_code == 204


def test_batch_larger_than_the_dataset_is_refused_at_submission(client):
    request = {**TINY, "dataset": {"synthetic": {"count": 8, "seed": 1}}}
    response = client.post("/train", json=request, headers=ADMIN)
    assert response.status_code == 422 and "'batch_size'" in response.text and "8 images" in response.text


@pytest.mark.parametrize(
    "change, named",
    [
        ({"config": {"nope": 1}}, "nope"),
        ({"config": {"batch_size": "big"}}, "batch_size"),
        ({"config": {"g_learning_rate": 3}}, "g_learning_rate"),
        ({"preset": "huge"}, "huge"),
        ({"dataset": "0123456789ab"}, "0123456789ab"),
        ({"dataset": "../../etc"}, "dataset"),
        ({"dataset": {"synthetic": {"count": 0}}}, "count"),
        ({"dataset": {"synthetic": {"grains": [9, 2]}}}, "grains"),
        ({"model": "../escape"}, "model"),
        ({"model": "7"}, "model"),
        ({"epochs": 3}, "epochs"),
    ],
)
def test_bad_job_request_is_422_naming_the_problem_and_queues_nothing(client, change, named):
    before = len(client.get("/train").json())
    response = client.post("/train", json={**TINY, **change}, headers=ADMIN)
    assert response.status_code == 422
    assert named in json.dumps(response.json()["detail"])
    assert len(client.get("/train").json()) == before


def test_unknown_job_is_404(client):
    assert client.get("/train/0123456789ab").status_code == 404
    assert client.get("/train/0123456789ab/preview.png").status_code == 404
    assert client.get("/train/0123456789ab/events").status_code == 404
    assert client.post("/train/0123456789ab/resume", headers=ADMIN).status_code == 404
    assert client.delete("/train/0123456789ab", headers=ADMIN).status_code == 404
    assert client.get("/train/not-an-id").status_code == 422


# A real service process, stopped or killed while a job trains.


@contextmanager
def live_service(
    data_dir: Path, store: Path, log: Path, **settings: str
) -> Iterator[tuple[subprocess.Popen, httpx.Client]]:
    """`python -m service` on a free loopback port, healthy, with an admin client; SIGTERMed at the end if
    still running."""
    settings = {"default_model": "custom", "reload_interval": "0", **settings}
    with running_service(
        log, probe="/healthz", models_dir=str(store), data_dir=str(data_dir), api_key=API_KEY, **settings
    ) as (process, url):
        with httpx.Client(base_url=url, headers=ADMIN, timeout=30) as client:
            yield process, client


def stop(process: subprocess.Popen, sig: int) -> int:
    process.send_signal(sig)
    return process.wait(timeout=120)


@contextmanager
def reaping_trainers(data_dir: Path) -> Iterator[None]:
    """Whatever happens in the test, no trainer it started outlives it."""
    try:
        yield
    finally:
        for status in data_dir.glob("jobs/*/run/status.json"):
            pid = json.loads(status.read_text()).get("pid")
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, TypeError):
                continue
            if str(status.parent).encode() in command:  # that trainer, not a recycled pid
                os.killpg(pid, signal.SIGKILL)


def test_service_sigterm_interrupts_job_and_resume_finishes_it_from_its_checkpoint(tmp_path):
    data_dir, store = tmp_path / "data", tmp_path / "store"
    store.mkdir()
    request = {**TINY, "config": {"total_steps": 400, "checkpoint_interval": 10}}
    with reaping_trainers(data_dir):
        with live_service(data_dir, store, tmp_path / "service.log") as (process, client):
            job = client.post("/train", json=request).json()
            wait_job(client, job["id"], lambda job: running_with_progress(job, 20) and job["phase"] == "train")
            assert stop(process, signal.SIGTERM) in (0, -signal.SIGTERM)
        log = (tmp_path / "service.log").read_text()
        assert "Application shutdown complete" in log

        with live_service(data_dir, store, tmp_path / "service.log") as (process, client):
            interrupted = client.get(f"/train/{job['id']}").json()
            assert interrupted["state"] == "interrupted" and interrupted["exit_status"] == 143
            assert [change["state"] for change in interrupted["history"]] == ["queued", "running", "interrupted"]
            stopped_at = interrupted["progress"]["step"]
            assert 20 <= stopped_at < 400

            resumed = client.post(f"/train/{job['id']}/resume")
            assert resumed.status_code == 202 and resumed.json()["state"] == "queued"
            done = wait_job(client, job["id"], lambda job: job["state"] == "succeeded", timeout=600)
            states = [change["state"] for change in done["history"]]
            assert states == ["queued", "running", "interrupted", "queued", "running", "succeeded"]
            assert done["progress"]["step"] == 400 and done["exported"]["version"] == 1
            assert client.post("/generate", params={"model": "custom", "seed": 1}).status_code == 200

    # The trainer resumed from the checkpoint taken at SIGTERM, not from scratch.
    lines = (data_dir / "jobs" / job["id"] / "run" / "progress.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines if '"event"' in line]
    assert [(e["event"], e["step"]) for e in events] == [("started", 0), ("resumed", events[1]["step"])]
    assert events[1]["step"] >= 20


def test_service_sigkill_then_restart_never_leaves_the_job_running(tmp_path):
    data_dir, store = tmp_path / "data", tmp_path / "store"
    store.mkdir()
    request = {**TINY, "config": {"total_steps": 300}}
    with reaping_trainers(data_dir):
        with live_service(data_dir, store, tmp_path / "service.log") as (process, client):
            job = client.post("/train", json=request).json()
            wait_job(client, job["id"], lambda job: running_with_progress(job, 10) and job["phase"] == "train")
            assert stop(process, signal.SIGKILL) == -signal.SIGKILL

        # The trainer, in its own session, survives; the new service re-attaches to it or, if it is gone,
        # marks the job interrupted. Either way the job ends.
        with live_service(data_dir, store, tmp_path / "service.log") as (process, client):
            ended = wait_job(client, job["id"], lambda job: job["state"] not in ("queued", "running"), timeout=600)
    details = " ".join(change["detail"] or "" for change in ended["history"])
    assert (ended["state"] == "succeeded" and "re-attached" in details) or ended["state"] == "interrupted", ended
