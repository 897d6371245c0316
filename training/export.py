"""Export a run's generator as a self-contained SavedModel version in a models_store.

    python -m training export --run-dir runs/cpu --store models_store --name voronoi64
    python -m training export --run-dir runs/cpu --store models_store --name voronoi64 \\
        --checkpoint latest --data data/test.zip
    python -m training export ... --data data/test.zip --train-data data/voronoi.zip --n 2000  # as `evaluate`
    python -m training export --run-dir runs/cpu --name voronoi64 --weights raw   # not the moving average

Writes `<store>/<name>/<N>/` (TF Serving's layout, N the next integer version) holding the float32
SavedModel, `fp16/` (the same signatures computing in float16, for GPU serving), `model.json` (the
model card), `samples.png` and, when the run has them, `training.gif` and `losses.png`. Everything is
written into a temporary directory first and renamed into place, so a crash never leaves a version
that looks complete, and a version is never changed afterwards.

Signatures:
  serving_default(z float32 [B, z_dim]) -> images float32 [B, 64, 64, 1] in [-1, 1]
  sample(seeds int64 [B], indices int64 [B]) -> images uint8 [B, 64, 64]; image b is a function of
      the model and (seeds[b], indices[b]) alone: its latent is stateless_normal(seed=[seed, index]).
  partition(seeds, indices) -> labels int32 [B, 64, 64] (the label each pixel takes, 0..g_sites-1),
      and for the laguerre head sites float32 [B, g_sites, 2] ((x, y) in px from the image's top-left
      corner) and weights float32 [B, g_sites] (px^2): pixel centre p belongs to the site with the
      smallest |p - site|^2 - weight. Only for the partition heads (the card's "head" says which).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from pathlib import Path

from training import checkpoint
from training.config import from_dict, to_dict
from training.errors import UserError

MAX_SAMPLE_BATCH = 8192  # largest B the sample signature accepts
SAMPLES_SEED = 0  # samples.png shows images 0..15 of this seed
PARTITION_SIGNATURES = {
    "laguerre": "seeds int64 [B], indices int64 [B] -> labels int32 [B, 64, 64], sites float32 [B, K, 2] "
    "(x, y px), weights float32 [B, K] (px^2)",
    "partition": "seeds int64 [B], indices int64 [B] -> labels int32 [B, 64, 64]",
}


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
        state = checkpoint.latest(run_dir)
        if state is None:
            raise UserError(f"{run_dir}: no finished checkpoint to export")
        return state, "latest"
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


def _module(generator, z_dim: int):
    import tensorflow as tf

    from training.heads import partition_outputs
    from training.models import IMAGE_SIZE

    partition = partition_outputs(generator)
    id_spec = [tf.TensorSpec([None], tf.int64, name="seeds"), tf.TensorSpec([None], tf.int64, name="indices")]

    def latents(seeds, indices):
        checks = [
            tf.debugging.assert_equal(tf.shape(seeds), tf.shape(indices), message="seeds and indices differ in length"),
            tf.debugging.assert_non_negative(seeds, message="seeds must be >= 0"),
            tf.debugging.assert_non_negative(indices, message="indices must be >= 0"),
            tf.debugging.assert_less_equal(tf.size(seeds), MAX_SAMPLE_BATCH, message=f"batch above {MAX_SAMPLE_BATCH}"),
        ]
        with tf.control_dependencies(checks):
            pairs = tf.stack([seeds, indices], axis=1)
        return tf.vectorized_map(lambda pair: tf.random.stateless_normal([z_dim], seed=pair), pairs)

    class Generator(tf.Module):
        def __init__(self):
            super().__init__(name="microgan_generator")
            self.generator = generator

        @tf.function(input_signature=[tf.TensorSpec([None, z_dim], tf.float32, name="z")])
        def serve(self, z):
            return {"images": tf.cast(self.generator(z, training=False), tf.float32)}

        @tf.function(input_signature=id_spec)
        def sample(self, seeds, indices):
            images = tf.cast(self.generator(latents(seeds, indices), training=False), tf.float32)[..., 0]
            # Same mapping as microstructure.images.to_uint8 (round half to even, clip).
            return {"images": tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0, 255), tf.uint8)}

    module = Generator()
    if partition is not None:  # only heads that draw a partition export one

        @tf.function(input_signature=id_spec)
        def partition_of(seeds, indices):
            out = partition(latents(seeds, indices), training=False)
            result = {"labels": tf.argmax(out["logits"], axis=-1, output_type=tf.int32)}
            if "sites" in out:  # unit coordinates -> pixels (x, y), weights -> pixels squared
                result["sites"] = tf.cast(out["sites"], tf.float32) * IMAGE_SIZE
                result["weights"] = tf.cast(out["weights"], tf.float32) * IMAGE_SIZE**2
            return result

        module.partition = partition_of
    return module


def signatures(module) -> dict:
    """The exported signatures: partition only for heads that draw one."""
    found = {"serving_default": module.serve, "sample": module.sample}
    if hasattr(module, "partition"):
        found["partition"] = module.partition
    return found


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


def _save(path: Path, state: dict, weights: list, precision: str) -> None:
    """Build the generator under `precision` from the checkpoint's config and these weights, and save it."""
    import keras
    import tensorflow as tf

    from training.models import build_generator

    cfg = from_dict(state["config"])
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        generator = build_generator(cfg)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    generator.set_weights(weights)
    module = _module(generator, cfg.z_noise_dim)
    tf.saved_model.save(module, str(path), signatures=signatures(module))


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

    from microstructure.images import grid
    from training.monitor import frame_paths, plot_losses, save_png, write_gif

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
        _save(tmp, state, arrays, "float32")
        _save(tmp / "fp16", state, arrays, "mixed_float16")

        # Samples and fidelity come from the exported model itself, as the service will see it.
        loaded = tf.saved_model.load(str(tmp))
        samples = loaded.sample(tf.fill([16], tf.constant(SAMPLES_SEED, tf.int64)), tf.range(16, dtype=tf.int64))[
            "images"
        ].numpy()
        save_png(tmp / "samples.png", grid(samples, columns=4), scale=2)
        if data:
            from training.evaluate import evaluate_model

            fidelity = {
                "source": f"evaluated at export against {data}",
                **evaluate_model(tmp, data, n=eval_n, train_data=train_data)["summary"],
            }
        else:
            fidelity = _run_fidelity(run_dir)
        # The run's pictures, brought up to date first (a run still training has no GIF yet).
        if frame_paths(run_dir):
            write_gif(run_dir)
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
            "image_size": 64,
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
            },
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
