"""The README and docs/ tell the truth: their CLI flags exist and the serve quick-start reaches /readyz."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import free_port, run_cli, wait_ready

ROOT = Path(__file__).resolve().parents[1]


USER_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # the README and its reference pages


def _shell_lines() -> list[str]:
    """Commands of the user documents' fenced sh blocks, continuation lines joined, comments dropped."""
    blocks = [block for doc in USER_DOCS for block in re.findall(r"```sh\n(.*?)```", doc.read_text(), flags=re.S)]
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def _documented_flags() -> dict[str, set[str]]:
    flags: dict[str, set[str]] = {}
    for line in _shell_lines():
        # Each command of the line (`TF_CONFIG=$(python -m training tf-config ...) python -m training train ...`).
        for match in re.finditer(r"python -m training ([\w-]+)([^)]*?)(?=\)|python -m|$)", line):
            flags.setdefault(match.group(1), set()).update(re.findall(r"(--[a-z][a-z-]*)", match.group(2)))
    return flags


def test_readme_documents_every_training_command():
    assert set(_documented_flags()) >= {"dataset", "inspect", "train", "export", "evaluate", "rank", "gif"}


@pytest.mark.parametrize("command", ["dataset", "inspect", "train", "export", "evaluate", "gif", "tf-config"])
def test_readme_cli_flags_exist(command):
    documented = _documented_flags().get(command, set())
    result = run_cli("training", command, "--help", timeout=60)
    assert result.returncode == 0
    missing = sorted(flag for flag in documented if flag not in result.stdout)
    assert not missing, f"README documents {missing} for `{command}`, which --help does not list"


def test_readme_bulk_flags_exist():
    documented = {flag for line in _shell_lines() if "python -m service.bulk" in line
                  for flag in re.findall(r"(--[a-z][a-z-]*)", line.split("python -m service.bulk", 1)[1])}  # fmt: skip
    assert {"--count", "--shard-size", "--out", "--shards", "--labels", "--sites"} <= documented
    result = run_cli("service.bulk", "--help", timeout=60)
    assert result.returncode == 0
    missing = sorted(flag for flag in documented if flag not in result.stdout)
    assert not missing, f"README documents {missing} for `python -m service.bulk`, which --help does not list"


def test_readme_serve_quick_start_reaches_readyz(tmp_path):
    quick = next(line for line in _shell_lines() if line.startswith("./dev serve"))
    port = free_port()
    env = {**os.environ, "MICROGAN_HOST": "127.0.0.1", "MICROGAN_PORT": str(port), "MICROGAN_DATA_DIR": str(tmp_path)}
    process = subprocess.Popen(
        quick.split(),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        # The timeout includes ./dev's set-up on a machine that has not run it yet.
        wait_ready(f"http://127.0.0.1:{port}", process, 600, describe=lambda: process.stdout.read())
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_docs_settings_table_lists_exactly_the_services_settings():
    from service.settings import Settings

    section = (ROOT / "docs" / "service.md").read_text().split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `MICROGAN_([A-Z_]+)` \|", section, flags=re.M)
    assert sorted(documented) == sorted(name.upper() for name in Settings.model_fields)
