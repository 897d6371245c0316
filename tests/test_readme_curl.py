"""The README's curl examples work: each one runs, as written, against a live `python -m service`.

Every `curl` of the README's fenced sh blocks is run with bash in a scratch directory (with the
README's own `AUTH=` line), `localhost:8000` pointed at a test server on loopback and its placeholders
(`<id>`, `<dataset id>`, `micrographs.zip`) replaced by resources this test prepared, in README order:
the tiny training job runs to success before its preview, animation and losses are fetched, a running
job is cancelled and then resumed, and the model versions activated or deleted exist and are not the
default. An example passes when its HTTP status is below 400, or the one its comment states
(`# 202: ...`).

    .venv/bin/python -m pytest tests/test_readme_curl.py -q
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, running_service
from tests.service.test_jobs import reaping_trainers

API_KEY = "readme-admin-key"
FINISHED = ("succeeded", "failed", "cancelled", "interrupted")
CURL_TIMEOUT_S = 120  # the event stream of a training job lasts until the job ends


def _commands(block: str) -> list[tuple[str, str]]:
    """(command, comment) of each logical line of an sh block: `\\`-continued lines and newlines inside
    quotes joined, a `# comment` outside quotes split off."""
    commands: list[tuple[str, str]] = []
    command, comment, quote, in_comment = "", "", None, False
    i = 0
    while i < len(block):
        char = block[i]
        if in_comment:
            if char == "\n":
                in_comment = False
            else:
                comment += char
                i += 1
                continue
        if quote:
            command += char
            quote = None if char == quote else quote
        elif char in "'\"":
            command, quote = command + char, char
        elif block.startswith("\\\n", i):
            command, i = command + " ", i + 2
            continue
        elif char == "#" and (not command or command[-1].isspace()):
            in_comment = True
        elif char == "\n":
            if command.strip():
                commands.append((command.strip(), comment.strip()))
            command, comment = "", ""
        else:
            command += char
        i += 1
    if command.strip():
        commands.append((command.strip(), comment.strip()))
    return commands


def readme_commands() -> list[tuple[str, str]]:
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [command for block in blocks for command in _commands(block)]


def test_readme_command_parser_joins_continuations_and_bodies_and_drops_comments():
    block = 'curl -X POST a \\\n -d \'{"x": 1}\'   # 202: the job\ncurl b -d \'{\n  "y": "#2"\n}\'  # ok\n'
    assert _commands(block) == [
        ("curl -X POST a   -d '{\"x\": 1}'", "202: the job"),
        ('curl b -d \'{\n  "y": "#2"\n}\'', "ok"),
    ]


def _writes_output(command: str) -> bool:
    return any(re.fullmatch(r"-[A-Za-z]*[oO][A-Za-z]*", token) for token in shlex.split(command))


class Live:
    """The test server and what the examples need from it: an admin client, a scratch dir, ids."""

    def __init__(self, url: str, work: Path) -> None:
        self.url, self.work = url, work
        self.client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60)
        self.ids: dict[str, str] = {}

    def job(self, job_id: str) -> dict:
        return self.client.get(f"/train/{job_id}").json()

    def wait_job(self, job_id: str, until, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if until(job):
                return job
            assert time.monotonic() < deadline, f"job condition not met within {timeout} s: {job}"
            time.sleep(0.2)

    def submit(self, request: dict) -> str:
        response = self.client.post("/train", json=request)
        assert response.status_code == 202, response.text
        return response.json()["id"]


@pytest.fixture(scope="module")
def live(tmp_path_factory, tiny_store: Path, synthetic_zip: Path) -> Iterator[Live]:
    """`python -m service` on loopback over a copy of the repo's store plus `tiny` (also as custom/1, custom/2)."""
    root = tmp_path_factory.mktemp("readme-curl")
    store, data_dir, work = root / "models_store", root / "data", root / "work"
    shutil.copytree(ROOT / "models_store", store)
    shutil.copytree(tiny_store / "tiny", store / "tiny")
    for version in (1, 2):  # versions to activate and delete, neither the default
        shutil.copytree(tiny_store / "tiny" / "1", store / "custom" / str(version))
    work.mkdir()
    shutil.copy(synthetic_zip, work / "micrographs.zip")

    log = root / "service.log"
    with reaping_trainers(data_dir):
        # MICROGAN_TRAIN_THREADS: trainers on a shared machine take one core.
        settings = dict(models_dir=str(store), data_dir=str(data_dir), api_key=API_KEY, reload_interval="0")
        with running_service(log, train_threads="1", job_stop_timeout_s="20", **settings) as (_, url):
            live = Live(url, work)
            with live.client:
                yield live


def _prepare(live: Live, command: str) -> str:
    """The command with its placeholders replaced, after creating what it needs."""
    ids = live.ids
    if "DELETE" in command and "/datasets/<id>" in command:
        # A dataset of its own: the uploaded one is used by the cpu job below.
        with open(live.work / "micrographs.zip", "rb") as file:
            response = live.client.post("/datasets", files={"file": ("spare.zip", file)})
        assert response.status_code == 201, response.text
        command = command.replace("<id>", response.json()["id"])
    elif "/train/<id>/cancel" in command:
        # A job that is training (so it checkpoints when cancelled, and resume has a checkpoint to continue).
        ids["long"] = live.submit({"dataset": ids["dataset"], "preset": "tiny", "config": {"total_steps": 100_000}})
        live.wait_job(ids["long"], lambda job: (job["progress"] or {}).get("step", 0) >= 1)
        command = command.replace("<id>", ids["long"])
    elif "/train/<id>/resume" in command:
        live.wait_job(ids["long"], lambda job: job["state"] in FINISHED)
        command = command.replace("<id>", ids["long"])
    elif "DELETE" in command and "/train/<id>" in command:
        command = command.replace("<id>", ids["tiny"])
    command = command.replace("/datasets/<id>", f"/datasets/{ids.get('dataset')}")
    command = command.replace("/train/<id>", f"/train/{ids.get('tiny')}")
    command = command.replace("<dataset id>", ids.get("dataset", ""))
    return command.replace("localhost:8000", live.url.removeprefix("http://"))


def _after(live: Live, command: str, body: str) -> None:
    """Remember the ids the example created; settle the jobs that must not keep training."""
    if "/datasets" in command and "-F file=@" in command:
        live.ids["dataset"] = json.loads(body)["id"]
    elif command.startswith("curl -X POST") and re.search(r"/train ", command + " "):
        job = json.loads(body)
        if '"preset": "tiny"' in command:
            live.ids["tiny"] = job["id"]
        else:  # the long cpu example
            assert live.client.post(f"/train/{job['id']}/cancel").status_code in (200, 202)
    elif "/events" in command:
        job = live.job(live.ids["tiny"])
        assert job["state"] == "succeeded", f"the README's tiny job ended {job['state']}: {job}"
    elif "/resume" in command:
        long = live.ids["long"]
        assert live.client.post(f"/train/{long}/cancel").status_code in (200, 202)
        live.wait_job(long, lambda job: job["state"] in FINISHED)


def _run(live: Live, prelude: str, command: str, number: int) -> tuple[int, str]:
    """Run one curl with bash in the scratch dir; its HTTP status and body (or where the body went)."""
    out = live.work / f"body-{number}"
    extra = "-sS -w '%{http_code}\\n'" + ("" if _writes_output(command) else f" -o {out}")
    script = prelude + command.replace("curl ", f"curl {extra} ", 1)
    result = subprocess.run(
        ["bash", "-c", script], cwd=live.work, capture_output=True, text=True, timeout=CURL_TIMEOUT_S
    )
    status = int(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else 0
    body = out.read_text(errors="replace") if out.exists() else f"(body written by the command) {result.stderr}"
    return status, body


def test_readme_curl_examples_succeed_against_a_live_server(live):
    commands = readme_commands()
    auth = next(command for command, _ in commands if command.startswith("AUTH="))
    prelude = f"KEY={API_KEY}\n{auth}\n"  # the README's KEY line reads the generated key; this server's is set
    curls = [(command, comment) for command, comment in commands if command.startswith("curl ")]
    assert len(curls) >= 30 and {"201", "202"} <= {comment[:3] for _, comment in curls}, curls

    failures = []
    for number, (documented, comment) in enumerate(curls):
        command = _prepare(live, documented)
        status, body = _run(live, prelude, command, number)
        stated = re.match(r"(\d{3}):", comment)
        ok = status == int(stated.group(1)) if stated else 200 <= status < 400
        if not ok:
            failures.append(f"{documented}\n  ran: {command}\n  status {status}: {body[:500]}")
            continue
        _after(live, documented, body)
    assert not failures, "README curl examples that fail:\n" + "\n".join(failures)
