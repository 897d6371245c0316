"""Checkpoints for resuming: everything a run needs to continue exactly where it stopped.

A checkpoint is one `checkpoints/ckpt-<step>.npz` holding the generator's and critic's weights, the
generator's moving average (when the run keeps one; absent from older checkpoints), both optimizers'
variables (Adam slots, iteration counters and, under mixed precision, the loss-scale state), the
step and epoch, the fixed preview noise and the config that built the models. The data order and
all noise are functions of (seed, step), so the step is the RNG state. Files are written to a
temporary name and renamed, so a kill mid-write leaves the previous checkpoint intact.
Checkpoints are for resuming; `training.export` turns one into a SavedModel for serving.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np

from training.errors import UserError
from training.files import atomic_path, write_atomic

_NAME = re.compile(r"ckpt-(\d+)\.npz$")
GROUPS = ("generator", "critic", "g_opt", "d_opt", "generator_ema")


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for path in checkpoint_dir(run_dir).glob("ckpt-*.npz"):
        match = _NAME.search(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save(run_dir: Path, state: dict, keep: int) -> Path:
    """Write ckpt-<step>.npz atomically and keep only the newest `keep`."""
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "step": np.int64(state["step"]),
        "epoch": np.int64(state["epoch"]),
        "preview_noise": state["preview_noise"],
        "config": np.frombuffer(json.dumps(state["config"]).encode(), np.uint8),
    }
    for group in GROUPS:
        for i, value in enumerate(state.get(group, ())):
            arrays[f"{group}/{i:04d}"] = value
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = folder / f"ckpt-{state['step']:07d}.npz"
    write_atomic(path, buffer.getvalue())
    for _, old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load(path: Path) -> dict:
    """Read a checkpoint written by `save`; raises ValueError if it is damaged."""
    try:
        with np.load(path) as data:
            state = {
                "step": int(data["step"]),
                "epoch": int(data["epoch"]),
                "preview_noise": data["preview_noise"],
                "config": json.loads(bytes(data["config"]).decode()),
            }
            for group in GROUPS:
                keys = sorted(k for k in data.files if k.startswith(f"{group}/"))
                state[group] = [data[k] for k in keys]
    except Exception as error:  # zipfile, pickle and key errors alike mean "damaged"
        raise ValueError(f"{path}: unreadable checkpoint ({error})") from None
    return state


def latest(run_dir: Path) -> dict | None:
    """The newest readable checkpoint, skipping damaged ones; None when there is none."""
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            return {**load(path), "path": path}
        except ValueError:
            continue
    return None


def keep_best(run_dir: Path, path: Path, record: dict) -> None:
    """Copy a checkpoint to best.npz with best.json describing it (step, score, figures)."""
    folder = checkpoint_dir(run_dir)
    with atomic_path(folder / "best.npz") as tmp:
        shutil.copyfile(path, tmp)
    write_atomic(folder / "best.json", json.dumps(record, indent=2))


def state_arrays(wgan, average=None) -> dict:
    """The groups of arrays a checkpoint holds (GROUPS), from the models and optimizers."""
    state = {
        "generator": [v.numpy() for v in wgan.generator.weights],
        "critic": [v.numpy() for v in wgan.critic.weights],
        "g_opt": [v.numpy() for v in wgan.g_optimizer.variables],
        "d_opt": [v.numpy() for v in wgan.d_optimizer.variables],
    }
    if average is not None:
        state["generator_ema"] = [v.numpy() for v in average.twin.weights]
    return state


def restore_arrays(wgan, state: dict, average=None) -> bool:
    """Assign a checkpoint's arrays to the models and optimizers; False when the run keeps a moving
    average but the checkpoint has none (it then starts at the generator's weights)."""
    targets = {
        "generator": wgan.generator.weights,
        "critic": wgan.critic.weights,
        "g_opt": wgan.g_optimizer.variables,
        "d_opt": wgan.d_optimizer.variables,
    }
    if average is not None:
        if state.get("generator_ema"):
            targets["generator_ema"] = average.twin.weights
    for group, variables in targets.items():
        arrays = state[group]
        if len(arrays) != len(variables) or any(v.shape != a.shape for v, a in zip(variables, arrays)):
            raise UserError(f"checkpoint {state.get('path')}: {group} does not match the model built from its config")
        for variable, array in zip(variables, arrays):
            variable.assign(array)
    if average is not None and "generator_ema" not in targets:
        average.reset()
        return False
    return True
