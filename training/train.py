"""Train or resume a WGAN-GP run; the run directory is the record of the run.

    python -m training train --data data/voronoi.zip --run-dir runs/cpu --preset cpu
    python -m training train --run-dir runs/cpu                    # resume (data from config.json)
    python -m training train --run-dir runs/cpu --set epochs=60    # resume and train longer

Run directory: config.json, checkpoints/, frames/step_<step>.png and frames/reals.png,
progress.jsonl, losses.csv, train.log, tb/, status.json and, at the end, training.gif and losses.png.
SIGINT/SIGTERM checkpoint and exit 130/143; after SIGKILL the same command resumes from the newest
intact checkpoint.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from training import checkpoint
from training.config import (
    ARCHITECTURE_KEYS,
    TrainConfig,
    apply,
    check_data,
    from_dict,
    load_json,
    parse_set,
    resolve,
    to_dict,
    user_overrides,
    validate,
)
from training.data import LoadOptions, epoch_order, load
from training.errors import UserError
from training.monitor import ProgressLog, plot_losses, save_frame, write_atomic, write_gif

PREVIEW_COUNT = 16
EXIT_ON_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


# Config resolution: fresh runs take preset, file and --set; resumes start from the checkpoint's config.


def resolve_run_config(args, saved: dict | None) -> TrainConfig:
    if saved is None:
        return resolve(args.preset, args.config, args.set)
    cfg = from_dict(saved)
    overrides = user_overrides({**(load_json(args.config) if args.config else {}), **parse_set(args.set)})
    if args.preset and args.preset != cfg.preset:
        raise UserError(f"config key 'preset': the run was started as {cfg.preset!r}; a resume cannot change it")
    updated = validate(apply(cfg, overrides))
    for key in ARCHITECTURE_KEYS:
        if getattr(updated, key) != getattr(cfg, key):
            raise UserError(
                f"config key {key!r}: the checkpoint was built with {getattr(cfg, key)!r}; "
                "a resume cannot change the architecture (start a new run directory)"
            )
    return updated


# TensorFlow set-up: threads, precision, determinism, devices, strategy.


def setup_tensorflow(cfg: TrainConfig):
    import keras
    import tensorflow as tf

    threads = cfg.threads or int(os.environ.get("MICROGAN_TRAIN_THREADS", "0") or 0)
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)  # share the card with the service
    precision = cfg.precision if cfg.precision != "auto" else ("mixed_float16" if gpus else "float32")
    keras.mixed_precision.set_dtype_policy(precision)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    if os.environ.get("TF_CONFIG"):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    return strategy, precision


# The step: one global batch drawn on the host, sliced per replica, summed back.


GENERATOR_STEP_KEYS = ("z_g", "grains_g")  # batch entries of the generator step; the others lead with n_critic


def draw_batch(
    cfg: TrainConfig, images: np.ndarray, step: int, steps_per_epoch: int, grains: np.ndarray | None = None
) -> dict:
    """Real batches and all noise of generator step `step` (0-based): a function of (seed, step).
    With `grains` (the count of every image, for a conditional run) the real batches' counts, and
    counts for the generator step drawn from the data's own."""
    epoch, within = divmod(step, steps_per_epoch)
    per_step = cfg.n_critic * cfg.batch_size
    order = epoch_order(len(images), cfg.seed, epoch)[within * per_step : (within + 1) * per_step]
    rng = np.random.default_rng([cfg.seed, step])
    shape = (cfg.n_critic, cfg.batch_size)
    batch = {
        "real": images[order].reshape(*shape, *images.shape[1:]),
        "z_d": rng.standard_normal((*shape, cfg.z_noise_dim), np.float32),
        "alpha": rng.random((*shape, 1, 1, 1), np.float32),
        "z_g": rng.standard_normal((cfg.batch_size, cfg.z_noise_dim), np.float32),
    }
    if grains is not None:
        batch["grains"] = grains[order].reshape(shape).astype(np.int32)
        batch["grains_g"] = grains[rng.integers(0, len(grains), cfg.batch_size)].astype(np.int32)
    return batch


def distribute(strategy, batch: dict):
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return {k: tf.constant(v) for k, v in batch.items()}

    def replica_slice(context):
        r = context.replica_id_in_sync_group
        per = batch["z_g"].shape[0] // replicas
        part = slice(r * per, (r + 1) * per)
        return {k: tf.constant(v[part] if k in GENERATOR_STEP_KEYS else v[:, part]) for k, v in batch.items()}

    return strategy.experimental_distribute_values_from_function(replica_slice)


def make_step(strategy, wgan, jit_compile: bool = False):
    """The distributed step (XLA measured slower on CPU, so off by default)."""
    import tensorflow as tf

    replica_step = tf.function(wgan.train_step, jit_compile=jit_compile)

    @tf.function
    def step(batch):
        out = strategy.run(replica_step, args=(batch,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in out.items()}

    return step


def build(cfg: TrainConfig, strategy, mixed: bool, total_steps: int, grains: dict | None = None):
    """The WGAN-GP with its optimizers; `grains` (a training.conditions record) for a conditional run."""
    from training.models import build_critic, build_generator, set_grain_histogram
    from training.wgan import WGANGP, make_optimizer

    with strategy.scope():
        generator = build_generator(cfg)
        if grains is not None:
            set_grain_histogram(generator, grains)
        wgan = WGANGP(generator, build_critic(cfg), cfg.gp_weight, cfg.n_critic, cfg.d_pack)
        wgan.compile(
            g_optimizer=make_optimizer(cfg.g_learning_rate, total_steps, cfg, mixed),
            d_optimizer=make_optimizer(cfg.d_learning_rate, total_steps * cfg.n_critic, cfg, mixed),
        )
        wgan.build_optimizers()
    return wgan


def build_average(cfg: TrainConfig, strategy, wgan):
    """The generator's moving average (None when ema_decay is 0)."""
    from training.models import build_generator
    from training.wgan import WeightAverage

    if not cfg.ema_decay:
        return None
    with strategy.scope():
        return WeightAverage(wgan.generator, build_generator(cfg), cfg.ema_decay)


def state_arrays(wgan, average=None) -> dict:
    state = {
        "generator": [v.numpy() for v in wgan.generator.weights],
        "critic": [v.numpy() for v in wgan.critic.weights],
        "g_opt": [v.numpy() for v in wgan.g_optimizer.variables],
        "d_opt": [v.numpy() for v in wgan.d_optimizer.variables],
    }
    if average is not None:
        state["generator_ema"] = [v.numpy() for v in average.twin.weights]
    return state


def restore_arrays(wgan, state: dict, average=None) -> None:
    targets = {
        "generator": wgan.generator.weights,
        "critic": wgan.critic.weights,
        "g_opt": wgan.g_optimizer.variables,
        "d_opt": wgan.d_optimizer.variables,
    }
    if average is not None:
        if state.get("generator_ema"):
            targets["generator_ema"] = average.twin.weights
        else:
            print("the checkpoint has no moving average of the generator: it starts here")
    for group, variables in targets.items():
        arrays = state[group]
        if len(arrays) != len(variables) or any(v.shape != a.shape for v, a in zip(variables, arrays)):
            raise UserError(f"checkpoint {state.get('path')}: {group} does not match the model built from its config")
        for variable, array in zip(variables, arrays):
            variable.assign(array)
    if average is not None and "generator_ema" not in targets:
        average.reset()


# The run.


class _Signals:
    def __init__(self):
        self.received: int | None = None

    def install(self) -> None:
        for sig in EXIT_ON_SIGNAL:
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame):
        self.received = signum


class _Tee:
    """Copy what the run prints into train.log."""

    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, text):
        self.stream.write(text)
        self.log.write(text)
        return len(text)

    def flush(self):
        self.stream.flush()
        self.log.flush()

    def isatty(self):
        return self.stream.isatty()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _status(run_dir: Path, **fields) -> None:
    path = run_dir / "status.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    write_atomic(path, json.dumps({**current, **fields}, indent=2))


def run_from_cli(args, options: LoadOptions) -> int:
    run_dir = Path(args.run_dir)
    saved_meta = _saved_meta(run_dir)
    resume = checkpoint.latest(run_dir) if run_dir.exists() else None
    cfg = resolve_run_config(args, resume["config"] if resume else None)
    data_path = args.data or (saved_meta or {}).get("data", {}).get("path")
    if not data_path:
        raise UserError("--data is required to start a run")
    if saved_meta and args.data is None:
        options = LoadOptions(**saved_meta["data"]["options"])  # the run's own --invert, --tile, --key ...
    if args.dry_run:
        if args.images is not None:
            check_data(cfg, args.images)
        print(
            json.dumps({"config": to_dict(cfg), "data": data_path, "resume_step": resume and resume["step"]}, indent=2)
        )
        return 0

    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir / "train.log", "a", buffering=1)
    sys.stdout, sys.stderr = _Tee(sys.__stdout__, log), _Tee(sys.__stderr__, log)
    signals = _Signals()
    signals.install()
    _status(run_dir, state="running", pid=os.getpid(), started=_now(), finished=None, exit_status=None, error=None)
    try:
        started_on = (saved_meta or {}).get("data", {}).get("fingerprint") if resume else None
        code = _train(run_dir, cfg, data_path, options, resume, signals, started_on)
    except UserError as error:
        _status(run_dir, state="failed", exit_status=2, error=str(error), finished=_now())
        raise
    except BaseException as error:  # the run's record must say how it ended, whatever ended it
        traceback.print_exc()
        _status(run_dir, state="failed", exit_status=1, error=f"{type(error).__name__}: {error}", finished=_now())
        return 1
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        log.close()
    return code


def _train(
    run_dir: Path,
    cfg: TrainConfig,
    data_path: str,
    options: LoadOptions,
    resume: dict | None,
    signals,
    started_on: str | None = None,  # the fingerprint of the data a resumed run started on
) -> int:
    from tqdm import tqdm

    # Data first: a bad dataset fails before any TensorFlow start-up cost.
    data = load(data_path, options)
    if started_on and started_on != data.fingerprint:
        raise UserError(
            f"{data_path}: dataset fingerprint {data.fingerprint} differs from the one the run started on "
            f"({started_on}); resume without --data (the run's own data and load options) or with the same "
            "data and options, or start a new run directory"
        )
    images = data.images
    grains, grain_record = None, None
    if cfg.condition == "grains":
        grains, grain_record = condition_on_grains(cfg, data, data_path)
    check_data(cfg, len(images))
    per_step = cfg.batch_size * cfg.n_critic
    steps_per_epoch = len(images) // per_step
    total_steps = cfg.total_steps or cfg.epochs * steps_per_epoch
    epochs = math.ceil(total_steps / steps_per_epoch)

    strategy, precision = setup_tensorflow(cfg)
    if cfg.batch_size % (strategy.num_replicas_in_sync * cfg.d_pack):
        raise UserError(
            f"config key 'batch_size': {cfg.batch_size} is not divisible by {strategy.num_replicas_in_sync} "
            f"replicas x d_pack {cfg.d_pack}"
        )
    import keras
    import tensorflow as tf

    from training.models import unconditional

    if cfg.deterministic:
        keras.utils.set_random_seed(cfg.seed)
    wgan = build(cfg, strategy, precision == "mixed_float16", total_steps, grain_record)
    average = build_average(cfg, strategy, wgan)
    # What frames and evaluation see: the moving average, drawing counts as the data's when conditional.
    sampler = unconditional(average.twin if average is not None else wgan.generator)
    step_fn = make_step(strategy, wgan)

    # Restore, or start fresh with the fixed preview grid and the reals frame.
    if resume:
        with strategy.scope():
            restore_arrays(wgan, resume, average)
        step, preview = resume["step"], resume["preview_noise"]
        print(f"resumed from {resume['path'].name} at step {step}/{total_steps}")
    else:
        step = 0
        preview = np.random.default_rng([cfg.seed, 2**31]).standard_normal((PREVIEW_COUNT, cfg.z_noise_dim), np.float32)
        save_frame(run_dir, "reals", images[:PREVIEW_COUNT])
    meta = {
        "config": to_dict(cfg),
        "data": {
            "path": str(data_path),
            "options": dataclasses.asdict(options),
            "count": len(images),
            "fingerprint": data.fingerprint,
            "mapping": data.mapping,
            **({"grains": grain_record} if grain_record else {}),
        },
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "epochs": epochs,
        "precision": precision,
        "replicas": strategy.num_replicas_in_sync,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    write_atomic(run_dir / "config.json", json.dumps(meta, indent=2))
    progress = ProgressLog(run_dir)
    progress.line({"step": step, "event": "resumed" if resume else "started", "total_steps": total_steps})
    print(
        f"{len(images)} images ({data.mapping}), {steps_per_epoch} steps/epoch, {total_steps} steps, "
        f"precision {precision}, {strategy.num_replicas_in_sync} replica(s)"
    )

    def preview_frame():
        save_frame(run_dir, f"step_{step:07d}", sampler(preview, training=False).numpy())

    def save_checkpoint():
        return checkpoint.save(
            run_dir,
            {
                "step": step,
                "epoch": epoch_of(step, steps_per_epoch),
                "preview_noise": preview,
                "config": to_dict(cfg),
                **state_arrays(wgan, average),
            },
            keep=cfg.keep_checkpoints,
        )

    if step == 0:
        preview_frame()
    best = _best_score(run_dir)
    reference = None  # measures of the real images fidelity is judged against, taken on first use
    bar = tqdm(
        total=total_steps,
        initial=step,
        desc="train",
        unit="step",
        file=sys.__stderr__,
        disable=not sys.__stderr__.isatty(),
    )
    sums, window_start, window_steps = {}, time.perf_counter(), 0
    while step < total_steps and signals.received is None:
        out = step_fn(distribute(strategy, draw_batch(cfg, images, step, steps_per_epoch, grains)))
        step += 1
        if average is not None:
            average.update(step)
        window_steps += 1
        for key, value in out.items():
            sums[key] = sums.get(key, 0.0) + float(value)
        bar.update(1)

        if step % cfg.log_interval == 0 or step == total_steps:
            elapsed = time.perf_counter() - window_start
            record = {
                "step": step,
                "total_steps": total_steps,
                "epoch": epoch_of(step, steps_per_epoch),
                "epochs": epochs,
                **{k: v / window_steps for k, v in sums.items()},
                "g_lr": _lr(wgan.g_optimizer),
                "d_lr": _lr(wgan.d_optimizer),
                "images_per_s": window_steps * cfg.batch_size / elapsed,
                "eta_s": (total_steps - step) * elapsed / window_steps,
            }
            if not all(math.isfinite(record[k]) for k in ("d_loss", "g_loss")):
                raise RuntimeError(f"non-finite loss at step {step}: {record}")
            progress.losses(record)
            bar.set_postfix(d=f"{record['d_loss']:.2f}", g=f"{record['g_loss']:.2f}")
            if bar.disable:
                print(
                    f"step {step}/{total_steps} d_loss {record['d_loss']:.3f} g_loss {record['g_loss']:.3f} "
                    f"W {record['wasserstein']:.3f} gp {record['gp']:.3f} {record['images_per_s']:.0f} img/s"
                )
            sums, window_start, window_steps = {}, time.perf_counter(), 0
        if step % cfg.frame_interval == 0 or step % steps_per_epoch == 0 or step == total_steps:
            preview_frame()
        saved = None
        if step % cfg.checkpoint_interval == 0 or step == total_steps:
            saved = save_checkpoint()
        if cfg.eval_interval and (step % cfg.eval_interval == 0 or step == total_steps):
            saved = saved or save_checkpoint()
            if reference is None:
                from training.evaluate import reference_measures

                reference = reference_measures(images, cfg.eval_samples, cfg.seed)
            best = _evaluate(run_dir, sampler, reference, cfg, step, saved, best, progress)
    bar.close()

    # Stop: on a signal checkpoint and exit 130/143; at the end write the GIF and the loss plot.
    if signals.received is not None:
        path = save_checkpoint()
        progress.close()
        code = EXIT_ON_SIGNAL[signals.received]
        print(f"stopped by signal {signals.received} at step {step}; checkpoint {path.name}")
        _status(run_dir, state="interrupted", exit_status=code, step=step, finished=_now())
        return code
    progress.close()
    write_gif(run_dir)
    plot_losses(run_dir)
    _status(run_dir, state="succeeded", exit_status=0, step=step, finished=_now())
    print(f"done: {step} steps; artifacts in {run_dir}")
    return 0


def condition_on_grains(cfg: TrainConfig, data, data_path: str) -> tuple[np.ndarray, dict]:
    """(grains per image, their record) of a conditional run's data; UserError when g_sites cannot draw them."""
    from training.conditions import grain_counts, grain_record

    counts = grain_counts(data, data_path)
    record = grain_record(counts)
    if record["max"] > cfg.g_sites:
        raise UserError(
            f"config key 'g_sites': the data has images of up to {record['max']} grains, "
            f"more than g_sites = {cfg.g_sites} (set g_sites={record['max']} or more)"
        )
    print(f"conditioning on grains per image: {record['min']}..{record['max']}")
    return counts, record


def epoch_of(step: int, steps_per_epoch: int) -> int:
    """The 1-based epoch that generator step `step` (1-based: the step just done) belongs to; 0 before any."""
    return math.ceil(step / steps_per_epoch)


def _saved_meta(run_dir: Path) -> dict | None:
    path = run_dir / "config.json"
    return json.loads(path.read_text()) if path.exists() else None


def _lr(optimizer) -> float:
    from training.wgan import current_lr

    return current_lr(optimizer)


def _best_score(run_dir: Path) -> float:
    path = checkpoint.checkpoint_dir(run_dir) / "best.json"
    return json.loads(path.read_text())["score"] if path.exists() else math.inf


def _evaluate(run_dir, generator, reference, cfg, step, saved, best, progress) -> float:
    """In-training fidelity on a small batch; keep the checkpoint with the best (lowest) score."""
    from training.evaluate import quick_fidelity

    figures = quick_fidelity(generator, reference, cfg.eval_samples, seed=cfg.seed + step)
    progress.fidelity(step, figures)
    print(f"fidelity at step {step}: score {figures['score']:.3f}")
    if figures["score"] < best:
        checkpoint.keep_best(run_dir, saved, {"step": step, "score": figures["score"], "fidelity": figures})
        return figures["score"]
    return best
