"""Fault and load suite: a real `python -m service` on 127.0.0.1, attacked and killed, with fixed counts.

One scenario, in order: hostile uploads (their validation's peak memory measured from /proc), a
training job, 16 concurrent clients for a fixed number of requests while a corrupt version appears in
the store, kill -9 of the service mid-job and mid-stream, a restart, and a second load round. It
asserts zero 5xx, zero lost jobs, every image equal to its sequential twin, and prints the figures
(docs/reliability.md quotes them).
"""

from __future__ import annotations

import collections
import json
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.hostile import bzip2_zip, h5_declaring
from tests.service.conftest import copy_store, wait_job
from tests.service.test_jobs import live_service, reaping_trainers, running_with_progress, stop
from training.sources import MEMORY_BOUND

CLIENTS = 16
ROUNDS = (30, 10)  # requests per client before the kill, after the restart
PINNED = {"model": "tiny", "version": "1"}
SEEDS = range(12)


def _generate_requests() -> list[dict]:
    """Distinct /generate queries whose bodies are checked against a sequential twin."""
    queries = []
    for seed in SEEDS:
        queries.append({**PINNED, "seed": seed})
        queries.append({**PINNED, "seed": seed, "n": 8, "format": "zip"})
        queries.append({**PINNED, "seed": seed, "n": 16, "start": 5, "format": "npy"})
        queries.append({**PINNED, "seed": seed, "n": 2, "format": "json"})
    return queries


def _twin_key(query: dict) -> str:
    return json.dumps({**PINNED, **query}, sort_keys=True, default=str)


BAD = [  # (method, path, params, expected status)
    ("POST", "/generate", {**PINNED, "seed": "+5"}, 422),
    ("POST", "/generate", {**PINNED, "n": 100_000}, 413),
    ("POST", "/generate", {"model": "nope", "seed": 1}, 404),
    ("POST", "/generate", {**PINNED, "format": "png", "n": 2}, 422),
    ("POST", "/generate", {**PINNED, "model": "ti\x00ny"}, 422),
    ("GET", "/models/tiny/9", {}, 404),
]


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: collections.Counter = collections.Counter()
        self.mismatches: list[str] = []
        self.unexpected: list[str] = []

    def add(self, status: int, problem: str | None = None, unexpected: str | None = None) -> None:
        with self.lock:
            self.statuses[status] += 1
            if problem:
                self.mismatches.append(problem)
            if unexpected:
                self.unexpected.append(unexpected)


def _load(url: str, twins: dict[str, bytes], count: int, tally: Tally, seed: int, job_id: str) -> None:
    """One client: `count` requests drawn from generate (checked against twins), bad input and reads."""
    rng = random.Random(seed)
    queries = list(_generate_requests())
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(count):
            kind = rng.random()
            if kind < 0.6:
                query = rng.choice(queries)
                if rng.random() < 0.2:  # unpinned: the latest good version, the same images
                    query = {k: v for k, v in query.items() if k not in PINNED}
                response = client.post("/generate", params=query)
                twin = twins[_twin_key(query)]
                ok = response.status_code == 200 and response.content == twin
                tally.add(response.status_code, None if ok else f"{query}: {response.status_code}")
            elif kind < 0.8:
                method, path, params, expected = rng.choice(BAD)
                response = client.request(method, path, params=params)
                wrong = None if response.status_code == expected else f"{path} {params}: {response.status_code}"
                tally.add(response.status_code, unexpected=wrong)
            else:
                path = rng.choice(["/models", "/healthz", "/readyz", f"/train/{job_id}", "/metrics"])
                response = client.get(path)
                tally.add(response.status_code, unexpected=None if response.status_code == 200 else path)


def _round(url: str, twins: dict[str, bytes], per_client: int, tally: Tally, job_id: str, during=None) -> None:
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(_load, url, twins, per_client, tally, i, job_id) for i in range(CLIENTS)]
        if during is not None:
            during()
        for future in futures:
            future.result()


def _inspect_peak(service_pid: int, stop_event: threading.Event, peaks: list[int]) -> None:
    """Poll the service's children: the highest VmHWM of any `training inspect` among them."""
    while not stop_event.is_set():
        for children in Path(f"/proc/{service_pid}/task").glob("*/children"):
            try:
                pids = children.read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    if b"inspect" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                        continue
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) * 1024)
        time.sleep(0.002)


def test_faults_and_load_lose_nothing_and_answer_no_5xx(tmp_path, tiny_store, request):
    store, data = copy_store(tiny_store, tmp_path / "store"), tmp_path / "data"
    log = tmp_path / "service.log"
    tally, figures = Tally(), {}
    started = time.monotonic()
    with reaping_trainers(data):
        with live_service(data, store, log, default_model="tiny") as (process, client):
            url = str(client.base_url)
            deadline = time.monotonic() + 90
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)

            # Hostile uploads: 422 each, validation memory measured.
            hostile = [
                bzip2_zip(tmp_path / "bomb.zip", request.config.cache),
                bzip2_zip(tmp_path / "liar.zip", request.config.cache, honest=False),
                h5_declaring(tmp_path / "bomb.h5", (60000, 64, 64)),
            ]
            peaks: list[int] = []
            polling = threading.Event()
            poller = threading.Thread(target=_inspect_peak, args=(process.pid, polling, peaks))
            poller.start()
            try:
                for path in hostile:
                    response = client.post("/datasets", files={"file": (path.name, path.read_bytes())})
                    tally.add(response.status_code, unexpected=None if response.status_code == 422 else path.name)
            finally:
                polling.set()
                poller.join()
            figures["hostile_uploads"] = len(hostile)
            figures["inspect_peak_mib"] = round(max(peaks, default=0) / 2**20)
            assert peaks and max(peaks) < MEMORY_BOUND

            # The sequential twins, then a job, then load while a corrupt version appears.
            twins = {}
            for query in _generate_requests():
                response = client.post("/generate", params=query)
                assert response.status_code == 200, response.text
                twins[_twin_key(query)] = response.content  # the unpinned query shares the key
            job = client.post(
                "/train",
                json={
                    "dataset": {"synthetic": {"count": 256, "seed": 2}},
                    "preset": "tiny",
                    "config": {"total_steps": 100, "checkpoint_interval": 10, "threads": 1},
                    "model": "custom",
                },
            ).json()
            wait_job(client, job["id"], lambda job: running_with_progress(job, 5) and job["phase"] == "train")

            def corrupt_version_appears() -> None:
                time.sleep(1.0)
                (store / "tiny" / "2").mkdir()
                (store / "tiny" / "2" / "saved_model.pb").write_bytes(b"not a protobuf")
                assert client.post("/models/reload").status_code == 200

            _round(url, twins, ROUNDS[0], tally, job["id"], during=corrupt_version_appears)
            failed = client.get("/models").json()["failed"]
            assert [f["version"] for f in failed] == [2] and str(store) not in failed[0]["reason"]

            # kill -9 mid-stream (a 1024-image npy being read) and mid-job.
            stream_query = {**PINNED, "seed": 99, "n": 1024, "format": "npy"}
            with httpx.Client(base_url=url, timeout=60) as streamer:
                with streamer.stream("POST", "/generate", params=stream_query) as response:
                    assert response.status_code == 200
                    chunks = response.iter_bytes()
                    prefix = next(chunks)
                    assert stop(process, signal.SIGKILL) == -signal.SIGKILL
                    try:
                        prefix += b"".join(chunks)
                        cut = False
                    except httpx.TransportError:
                        cut = True

        with live_service(data, store, log, default_model="tiny") as (process, client):
            url = str(client.base_url)
            deadline = time.monotonic() + 90
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            full = client.post("/generate", params=stream_query)
            assert full.status_code == 200 and full.content.startswith(prefix) and (cut or full.content == prefix)
            _round(url, twins, ROUNDS[1], tally, job["id"])

            # The job re-attached (or, if its trainer had gone, resumes) and ends exported.
            ended = wait_job(client, job["id"], lambda job: job["state"] not in ("queued", "running"), timeout=600)
            if ended["state"] == "interrupted":
                assert client.post(f"/train/{job['id']}/resume").status_code == 202
                ended = wait_job(client, job["id"], lambda job: job["state"] not in ("queued", "running"), timeout=600)
            assert ended["state"] == "succeeded" and ended["exported"]["model"] == "custom", ended
            # A 503 from /readyz while the models load is its answer, not a failure; nothing else is 5xx.
            lines = client.get("/metrics").text.splitlines()
            server_errors = [ln for ln in lines if 'status="5' in ln and 'route="/readyz",status="503"' not in ln]
            assert not server_errors, server_errors

    figures.update(
        requests=sum(tally.statuses.values()) + len(twins) + 2,  # + twins, the cut stream and its redo
        statuses=dict(sorted(tally.statuses.items())),
        clients=CLIENTS,
        mismatches=len(tally.mismatches),
        unexpected=len(tally.unexpected),
        job=ended["history"][-1]["detail"],
        job_reattached=any("re-attached" in (change["detail"] or "") for change in ended["history"]),
        kill_cut_stream=cut,
        seconds=round(time.monotonic() - started),
    )
    print(f"\nreliability: {json.dumps(figures)}")
    assert not [status for status in tally.statuses if status >= 500], figures
    assert not tally.mismatches and not tally.unexpected, (tally.mismatches[:5], tally.unexpected[:5])
