"""Mixed precision and tf.distribute, each in a fresh process (global policy, logical devices)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ENV
from tests.training.scripts.variants import VARIANTS

SCRIPTS = Path(__file__).parent / "scripts"


def _script(name: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=300, env=ENV
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def precision_steps() -> dict:
    return {policy: _script("precision_step.py", policy) for policy in ("float32", "mixed_float16")}


@pytest.mark.parametrize("head", VARIANTS)
def test_mixed_precision_first_update_matches_float32(precision_steps, head):
    full, mixed = precision_steps["float32"][head], precision_steps["mixed_float16"][head]
    assert mixed["compute_dtype"] == "float16" and full["compute_dtype"] == "float32"
    assert mixed["images_dtype"] == "float32" and mixed["logits_dtype"] in (None, "float32")
    assert mixed["loss_scale_optimizer"] and not full["loss_scale_optimizer"]
    # An unscaled loss (grads divided by 2^15) or a doubly scaled one moves these by orders of magnitude.
    for network in ("generator", "critic"):
        assert mixed[network] == pytest.approx(full[network], rel=0.05), network
    assert mixed["finite"] and full["finite"]


@pytest.fixture(scope="module")
def mirrored_steps() -> dict:
    return {optimizer: _script("mirrored_step.py", optimizer) for optimizer in ("adam", "sgd")}


@pytest.mark.parametrize("head", VARIANTS)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_mirrored_step_matches_default_strategy(mirrored_steps, optimizer, head):
    out = mirrored_steps[optimizer][head]
    assert out["replicas"] == 2
    assert out["max_change"] > 1e-4  # the step did move the weights
    assert out["max_difference"] < 1e-6 + 1e-3 * out["max_change"]
    default, mirrored = out["losses"]
    for key in default:
        assert mirrored[key] == pytest.approx(default[key], rel=1e-4, abs=1e-6), key
