"""Checking a training config before a job is queued: `python -m training train --dry-run`.

    from pathlib import Path
    from service.config_check import check_config
    resolved = check_config("tiny", {"total_steps": 30}, Path("data/datasets/0123456789ab/data.zip"),
                            scratch=Path("data/jobs"))
    resolved["total_steps"]      # 30; a bad key, preset or batch raises ConfigRejected naming it

The trainer's own rules decide (the service never imports the training code): the dry run resolves the
config the way `train` would, prints it and exits 0, or exits 2 with one `error:` line.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from service.errors import ConfigRejected
from service.training_cli import child_env, command, error_reason

DRY_RUN_TIMEOUT_S = 120


def check_config(
    preset: str | None, overrides: dict, data_path: Path, scratch: Path, images: int | None = None
) -> dict:
    """The config the trainer would resolve; ConfigRejected naming the bad key or preset (or a batch larger
    than the dataset's `images`, when known). The dry run works in a `.dry-run-*` directory under `scratch`."""
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".dry-run-") as tmp:
        config_file = Path(tmp) / "overrides.json"
        config_file.write_text(json.dumps(overrides))
        dry_run = command("train", "--data", data_path, "--run-dir", Path(tmp) / "run", "--config", config_file)
        dry_run += ["--dry-run"] + ([f"--preset={preset}"] if preset else [])
        dry_run += ["--images", str(images)] if images is not None else []
        result = subprocess.run(
            dry_run, capture_output=True, text=True, timeout=DRY_RUN_TIMEOUT_S, env=child_env(), cwd=tmp
        )
    if result.returncode == 2:
        reason = error_reason(result.stderr.splitlines()) or "?"
        raise ConfigRejected(reason.replace(str(config_file), "config"))
    if result.returncode != 0:
        raise RuntimeError(f"train --dry-run exited {result.returncode}: {result.stderr[-2000:]}")
    return json.loads(result.stdout)["config"]
