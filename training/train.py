"""Train or resume a WGAN-GP run; the run directory is the record of the run.

    python -m training train --data data/voronoi.zip --run-dir runs/cpu --preset cpu
    python -m training train --run-dir runs/cpu                    # resume (data from config.json)
    python -m training train --run-dir runs/cpu --set epochs=60    # resume and train longer

Run directory: config.json, checkpoints/, frames/step_<step>.png and frames/reals.png,
progress.jsonl, losses.csv, train.log, tb/, status.json, training.gif (rewritten with every frame) and, at the end,
losses.png.
SIGINT/SIGTERM checkpoint and exit 130/143; after SIGKILL the same command resumes from the newest
intact checkpoint. The parts: training.resume (config and data on resume), training.tf_setup,
training.steps (batches, distribution, the step), training.wgan (networks and optimizers),
training.checkpoint (what a checkpoint holds), training.run_record (status.json, train.log, signals),
training.monitor (progress lines, frames, GIF).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np

from training import checkpoint, cluster
from training.config import TrainConfig, check_data, to_dict
from training.errors import UserError
from training.files import write_atomic
from training.loading import LoadOptions, load
from training.monitor import ProgressLog, plot_losses, save_frame
from training.observer import Observer, Schedule
from training.resume import check_same_data, resolve_run_config, saved_meta
from training.run_record import EXIT_ON_SIGNAL, Signals, Tee, now, write_status

PREVIEW_COUNT = 16


@dataclasses.dataclass
class RunData:
    """The images a run trains on, with what the schedule and the record need of them."""

    images: np.ndarray
    grains: np.ndarray | None  # grains per image, for a conditional run
    meta: dict  # config.json's "data"
    steps_per_epoch: int


def run_from_cli(args, options: LoadOptions) -> int:
    run_dir = Path(args.run_dir)
    saved = saved_meta(run_dir)
    resume = checkpoint.latest(run_dir) if run_dir.exists() else None
    cfg = resolve_run_config(args, resume["config"] if resume else None)
    data_path = args.data or (saved or {}).get("data", {}).get("path")
    if not data_path:
        raise UserError("--data is required to start a run")
    if saved and args.data is None:
        options = LoadOptions(**saved["data"]["options"])  # the run's own --invert, --tile, --key ...
    if args.dry_run:
        if args.images is not None:
            check_data(cfg, args.images)
        print(
            json.dumps({"config": to_dict(cfg), "data": data_path, "resume_step": resume and resume["step"]}, indent=2)
        )
        return 0

    run_dir = cluster.writable_run_dir(run_dir)  # under TF_CONFIG only the chief writes the run directory
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir / "train.log", "a", buffering=1)
    sys.stdout, sys.stderr = Tee(sys.__stdout__, log), Tee(sys.__stderr__, log)
    signals = Signals()
    signals.install()
    write_status(run_dir, state="running", pid=os.getpid(), started=now(), finished=None, exit_status=None, error=None)
    try:
        started_on = (saved or {}).get("data", {}).get("fingerprint") if resume else None
        data = load_run_data(cfg, data_path, options, started_on)
        code = _train(run_dir, cfg, data, resume, signals)
    except UserError as error:
        write_status(run_dir, state="failed", exit_status=2, error=str(error), finished=now())
        raise
    except BaseException as error:  # the run's record must say how it ended, whatever ended it
        traceback.print_exc()
        write_status(run_dir, state="failed", exit_status=1, error=f"{type(error).__name__}: {error}", finished=now())
        return 1
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        log.close()
    return code


def load_run_data(cfg: TrainConfig, data_path: str, options: LoadOptions, started_on: str | None) -> RunData:
    """Load and check the data (before any TensorFlow start-up cost, so bad data fails fast)."""
    data = load(data_path, options)
    check_same_data(data_path, data.fingerprint, started_on)
    check_data(cfg, len(data.images))
    steps_per_epoch = len(data.images) // (cfg.batch_size * cfg.n_critic)
    meta = {
        "path": str(data_path),
        "options": dataclasses.asdict(options),
        "count": len(data.images),
        "fingerprint": data.fingerprint,
        "mapping": data.mapping,
    }
    grains = None
    if cfg.condition == "grains":
        grains, meta["grains"] = condition_on_grains(cfg, data, data_path)
    return RunData(data.images, grains, meta, steps_per_epoch)


def _train(run_dir: Path, cfg: TrainConfig, data: RunData, resume: dict | None, signals: Signals) -> int:
    import keras
    import tensorflow as tf

    from training.networks import unconditional
    from training.steps import distribute, draw_batch, make_step
    from training.tf_setup import setup_tensorflow
    from training.wgan import build_average, build_wgan, current_lr

    schedule = Schedule(
        run_dir, cfg, data.steps_per_epoch, cfg.total_steps or cfg.epochs * data.steps_per_epoch, data.images
    )
    strategy, precision = setup_tensorflow(cfg)
    if cfg.batch_size % (strategy.num_replicas_in_sync * cfg.d_pack):
        raise UserError(
            f"config key 'batch_size': {cfg.batch_size} is not divisible by {strategy.num_replicas_in_sync} "
            f"replicas x d_pack {cfg.d_pack}"
        )
    if cfg.deterministic:
        keras.utils.set_random_seed(cfg.seed)
    wgan = build_wgan(cfg, strategy, precision == "mixed_float16", schedule.total_steps, data.meta.get("grains"))
    average = build_average(cfg, strategy, wgan)
    step, preview = _start(run_dir, cfg, data, resume, strategy, wgan, average)
    if resume:
        print(f"resumed from {resume['path'].name} at step {step}/{schedule.total_steps}")
    meta = {
        "config": to_dict(cfg),
        "data": data.meta,
        "steps_per_epoch": schedule.steps_per_epoch,
        "total_steps": schedule.total_steps,
        "epochs": schedule.epochs,
        "precision": precision,
        "replicas": strategy.num_replicas_in_sync,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    write_atomic(run_dir / "config.json", json.dumps(meta, indent=2))
    progress = ProgressLog(run_dir)
    progress.line({"step": step, "event": "resumed" if resume else "started", "total_steps": schedule.total_steps})
    print(
        f"{len(data.images)} images ({data.meta['mapping']}), {schedule.steps_per_epoch} steps/epoch, "
        f"{schedule.total_steps} steps, precision {precision}, {strategy.num_replicas_in_sync} replica(s)"
    )

    def save_checkpoint(at: int) -> Path:
        state = {"step": at, "epoch": schedule.epoch_of(at), "preview_noise": preview, "config": to_dict(cfg)}
        return checkpoint.save(run_dir, {**state, **checkpoint.state_arrays(wgan, average)}, cfg.keep_checkpoints)

    # Frames and evaluation see the moving average, drawing counts as the data's when conditional.
    sampler = unconditional(average.twin if average is not None else wgan.generator)
    rates = lambda: (current_lr(wgan.g_optimizer), current_lr(wgan.d_optimizer))  # noqa: E731
    observer = Observer(schedule, sampler, preview, save_checkpoint, progress, rates)
    observer.start(step)
    step_fn = make_step(strategy, wgan)
    while step < schedule.total_steps and signals.received is None:
        batch = draw_batch(cfg, data.images, step, schedule.steps_per_epoch, data.grains)
        losses = step_fn(distribute(strategy, batch))
        step += 1
        if average is not None:
            average.update(step)
        observer.after_step(step, losses)
    observer.close()

    # Stop: on a signal checkpoint and exit 130/143; at the end write the GIF and the loss plot.
    if signals.received is not None:
        path = save_checkpoint(step)
        code = EXIT_ON_SIGNAL[signals.received]
        print(f"stopped by signal {signals.received} at step {step}; checkpoint {path.name}")
        write_status(run_dir, state="interrupted", exit_status=code, step=step, finished=now())
        return code
    plot_losses(run_dir)
    write_status(run_dir, state="succeeded", exit_status=0, step=step, finished=now())
    print(f"done: {step} steps; artifacts in {run_dir}")
    return 0


def _start(run_dir: Path, cfg: TrainConfig, data: RunData, resume, strategy, wgan, average) -> tuple[int, np.ndarray]:
    """(step, preview latents): restored from the checkpoint, or fresh with the reals frame."""
    if resume:
        with strategy.scope():
            if not checkpoint.restore_arrays(wgan, resume, average):
                print("the checkpoint has no moving average of the generator: it starts here")
        return resume["step"], resume["preview_noise"]
    save_frame(run_dir, "reals", data.images[:PREVIEW_COUNT])
    preview = np.random.default_rng([cfg.seed, 2**31]).standard_normal((PREVIEW_COUNT, cfg.z_noise_dim), np.float32)
    return 0, preview


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
