"""Export a run's generator as a self-contained SavedModel version in a models_store.

    python -m training export --run-dir runs/cpu --store models_store --name voronoi64
    python -m training export --run-dir runs/cpu --store models_store --name voronoi64 \\
        --checkpoint latest --data data/test.zip
    python -m training export ... --data data/test.zip --train-data data/voronoi.zip --n 2000  # as `evaluate`
    python -m training export --run-dir runs/cpu --name voronoi64 --weights raw   # not the moving average

Writes `<store>/<name>/<N>/` (TF Serving's layout, N the next integer version) holding the float32
SavedModel, `fp16/` (the same signatures computing in float16, for GPU serving), `model.json` (the
model card), `samples.png` (for a model conditioned on grains also `grains.png`: images 0..3 of seed
0 down the rows, drawn at every count of the trained range across the columns) and, when the run has
them, `training.gif` and `losses.png`. Everything is written into a temporary directory first and
renamed into place, so a crash never leaves a version that looks complete, and a version is never
changed afterwards.

Signatures: training.signatures.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from pathlib import Path

from microstructure.images import SIZE, grid
from training import checkpoint
from training.config import from_dict, to_dict
from training.errors import UserError
from training.signatures import MAX_SAMPLE_BATCH, PARTITION_SIGNATURES, conditional_signatures, signatures, tf_module

SAMPLES_SEED = 0  # samples.png shows images 0..15 of this seed


def pick_checkpoint(run_dir: Path, which: str) -> tuple[dict, str]:
    """Return (checkpoint state, how it was chosen); UserError when there is none to export."""
    if not (run_dir / "checkpoints").is_dir():
        raise UserError(f"{run_dir}: no checkpoints/ (not a training run, or it has not saved yet)")
    folder = checkpoint.checkpoint_dir(run_dir)
    if which == "best":
        if (folder / "best.npz").exists():
            record = json.loads((folder / "best.json").read_text())
            state = checkpoint.load(folder / "best.npz")
            return state, f"best (fidelity score {record['score']:.4f} at step {record['step']})"
        which = "latest"
        print("no best checkpoint kept by the run (no in-training evaluation); falling back to latest")
    if which == "latest":
        newest = checkpoint.latest(run_dir)
        if newest is None:
            raise UserError(f"{run_dir}: no finished checkpoint to export")
        return newest, "latest"
    try:
        step = int(which)
    except ValueError:
        raise UserError(f"--checkpoint {which!r}: expected best, latest or a step number") from None
    path = folder / f"ckpt-{step:07d}.npz"
    if not path.exists():
        kept = ", ".join(str(s) for s, _ in checkpoint.list_checkpoints(run_dir)) or "none"
        raise UserError(f"{run_dir}: no checkpoint at step {step} (kept: {kept})")
    try:
        return checkpoint.load(path), f"step {step}"
    except ValueError as error:
        raise UserError(str(error)) from None


def pick_weights(state: dict, which: str) -> tuple[list, str]:
    """The generator weights to export: the moving average ("ema", when the checkpoint has one) or "raw"."""
    if which not in ("ema", "raw"):
        raise UserError(f"--weights {which!r}: expected ema or raw")
    if which == "ema" and state.get("generator_ema"):
        decay = from_dict(state["config"]).ema_decay
        return state["generator_ema"], f"ema (moving average, decay {decay})"
    if which == "ema":
        print("the checkpoint has no moving average of the generator: exporting its raw weights")
    return state["generator"], "raw"


def _save(path: Path, state: dict, weights: list, precision: str, grains: dict | None = None) -> None:
    """Build the generator under `precision` from the checkpoint's config and these weights, and save it."""
    import keras
    import tensorflow as tf

    from training.networks import build_generator

    cfg = from_dict(state["config"])
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        generator = build_generator(cfg)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    generator.set_weights(weights)
    module = tf_module(generator, cfg.z_noise_dim, grains)
    tf.saved_model.save(module, str(path), signatures=signatures(module))


def grain_picture(loaded, grains: dict, rows: int = 4):
    """uint8 mosaic: images 0..rows-1 of SAMPLES_SEED (down) at each count grains["min"]..["max"] (across)."""
    import numpy as np
    import tensorflow as tf

    counts = range(grains["min"], grains["max"] + 1)
    seeds, indices = tf.fill([rows], tf.constant(SAMPLES_SEED, tf.int64)), tf.range(rows, dtype=tf.int64)
    columns = [loaded.sample_grains(seeds, indices, tf.fill([rows], count))["images"].numpy() for count in counts]
    return grid(np.stack(columns, axis=1).reshape(-1, SIZE, SIZE), columns=len(counts))


def _next_version(model_dir: Path) -> int:
    versions = (
        [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()] if model_dir.exists() else []
    )
    return max(versions, default=0) + 1


def _run_fidelity(run_dir: Path) -> dict | None:
    from training.monitor import fidelity_history

    history = fidelity_history(run_dir)
    if not history:
        return None
    step, figures = history[-1]
    return {"source": "in-training (last evaluation of the run)", "step": step, **figures}


def export(
    run_dir: Path,
    store: Path,
    name: str,
    which: str = "best",
    data: str | None = None,
    eval_n: int = 512,
    weights: str = "ema",
    train_data: str | None = None,
) -> Path:
    import keras
    import tensorflow as tf

    from training.monitor import plot_losses, save_png

    if not name or "/" in name or name.startswith(".") or name.isdigit():
        raise UserError(f"--name {name!r}: expected a plain model name such as voronoi64")
    state, chosen = pick_checkpoint(run_dir, which)
    arrays, weights_used = pick_weights(state, weights)
    print(f"exporting checkpoint {chosen}, step {state['step']}, {weights_used} weights")
    meta = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").exists() else {}
    model_dir = store / name
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=model_dir))
    try:
        grains = meta.get("data", {}).get("grains")
        if from_dict(state["config"]).condition == "grains" and not grains:
            raise UserError(f"{run_dir}/config.json: a conditional run without its grain histogram (data.grains)")
        _save(tmp, state, arrays, "float32", grains)
        _save(tmp / "fp16", state, arrays, "mixed_float16", grains)

        # Samples and fidelity come from the exported model itself, as the service will see it.
        loaded = tf.saved_model.load(str(tmp))
        samples = loaded.sample(tf.fill([16], tf.constant(SAMPLES_SEED, tf.int64)), tf.range(16, dtype=tf.int64))[
            "images"
        ].numpy()
        save_png(tmp / "samples.png", grid(samples, columns=4), scale=2)
        if grains:
            save_png(tmp / "grains.png", grain_picture(loaded, grains), scale=2)
        if data:
            from training.evaluate import evaluate_model

            fidelity: dict | None = {
                "source": f"evaluated at export against {data}",
                **evaluate_model(tmp, data, n=eval_n, train_data=train_data)["summary"],
            }
        else:
            fidelity = _run_fidelity(run_dir)
        # The run's pictures: its GIF as the run keeps it (rewritten with every frame), the loss plot
        # brought up to date (a run still training draws it only at its end).
        if (run_dir / "losses.csv").exists():
            plot_losses(run_dir)
        for artifact in ("training.gif", "losses.png"):
            if (run_dir / artifact).exists():
                shutil.copyfile(run_dir / artifact, tmp / artifact)

        cfg = from_dict(state["config"])
        version = _next_version(model_dir)
        card = {
            "name": name,
            "version": version,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "preset": cfg.preset,
            "config": to_dict(cfg),
            "z_dim": cfg.z_noise_dim,
            "image_size": SIZE,
            "head": cfg.g_head,
            "checkpoint": chosen,
            "weights": weights_used,
            "steps": state["step"],
            "epochs": round(state["step"] / meta["steps_per_epoch"], 3) if meta.get("steps_per_epoch") else None,
            "dataset": {k: meta.get("data", {}).get(k) for k in ("fingerprint", "count", "path", "mapping")},
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "signatures": {
                "serving_default": "z float32 [B, z_dim] -> images float32 [B, 64, 64, 1] in [-1, 1]",
                "sample": "seeds int64 [B], indices int64 [B] -> images uint8 [B, 64, 64]",
                **({"partition": PARTITION_SIGNATURES[cfg.g_head]} if cfg.g_head in PARTITION_SIGNATURES else {}),
                **(conditional_signatures(cfg) if grains else {}),
            },
            **({"condition": {"name": "grains", **grains}} if grains else {}),
            "max_sample_batch": MAX_SAMPLE_BATCH,
            "variants": {"float32": ".", "float16": "fp16"},
            "fidelity": fidelity,
        }
        (tmp / "model.json").write_text(json.dumps(card, indent=2))
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the version from other users (the service)
        # Rename into place; a concurrent export taking the same number makes us take the next one.
        while True:
            target = model_dir / str(version)
            try:
                os.rename(tmp, target)
                break
            except OSError:
                if not target.exists():
                    raise
                version += 1
                card["version"] = version
                (tmp / "model.json").write_text(json.dumps(card, indent=2))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"exported {name} version {version} to {target}")
    return target
