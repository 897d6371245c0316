"""The trainer's own ranges: every integer key bounded above and below, widths and steps included, and a
dry run that checks a config against a dataset's image count (what a job submission asks)."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from training.config import MAX_STEPS, MAX_WIDTH, RANGES, resolve
from training.errors import UserError


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("total_steps=1e30", f"'total_steps': must be 0..{MAX_STEPS}"),
        (f"total_steps={MAX_STEPS + 1}", f"'total_steps': must be 0..{MAX_STEPS}"),
        ("epochs=0", "'epochs': must be 1..100000"),
        ("batch_size=100000", "'batch_size': must be 1..4096"),
        (f"g_filters=[{MAX_WIDTH + 1},64,32]", f"'g_filters': widths must be 1..{MAX_WIDTH}"),
        ("d_filters=[8,16,0,32]", f"'d_filters': widths must be 1..{MAX_WIDTH}"),
        (f"g_base={MAX_WIDTH * 4}", f"'g_base': must be 1..{MAX_WIDTH}"),
        ("gp_weight=NaN", "'gp_weight': must be 0..1e+06"),
        ("gp_weight=-1", "'gp_weight'"),
        ("seed=-1", "'seed': must be 0.."),
    ],
)
def test_config_out_of_range_names_the_key_and_the_range(override, fragment):
    with pytest.raises(UserError, match="config key") as caught:
        resolve("tiny", overrides=[override])
    assert fragment in str(caught.value)


def test_every_preset_is_inside_the_ranges():
    for preset in ("reference", "cpu", "tiny"):
        cfg = resolve(preset)
        assert all(low <= getattr(cfg, key) <= high for key, (low, high) in RANGES.items())


def test_dry_run_checks_the_batch_against_the_image_count(tmp_path):
    command = ["training", "train", "--data", "x.zip", "--run-dir", tmp_path / "run", "--preset", "tiny", "--dry-run"]
    refused = run_cli(*command, "--images", "10", cwd=tmp_path)
    assert refused.returncode == 2 and "'batch_size'" in refused.stderr and "10 images" in refused.stderr
    assert run_cli(*command, "--images", "16", cwd=tmp_path).returncode == 0
    assert not (tmp_path / "run").exists()
