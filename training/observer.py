"""What the training loop does between steps: progress records, preview frames, checkpoints, fidelity.

    observer = Observer(run, sampler, preview, save_checkpoint, progress)
    for each step: observer.after_step(step, losses)       # at the intervals of the run's config
    observer.close()

Intervals are in generator steps (config log_interval, frame_interval, checkpoint_interval,
eval_interval); frames also come at each epoch end, and everything at the last step. The
in-training evaluation keeps the checkpoint with the lowest score as best.npz.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from training import checkpoint
from training.config import TrainConfig
from training.monitor import ProgressLog, save_frame, write_gif


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A run's place and pace: where it writes, its config, and how its steps divide into epochs."""

    run_dir: Path
    cfg: TrainConfig
    steps_per_epoch: int
    total_steps: int
    images: np.ndarray  # the training images (the in-training evaluation compares with them)

    @property
    def epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)

    def epoch_of(self, step: int) -> int:
        return epoch_of(step, self.steps_per_epoch)


def epoch_of(step: int, steps_per_epoch: int) -> int:
    """The 1-based epoch that generator step `step` (1-based: the step just done) belongs to; 0 before any."""
    return math.ceil(step / steps_per_epoch)


class Observer:
    def __init__(
        self,
        schedule: Schedule,
        sampler,  # z -> images: what frames and evaluation see (the moving average when kept)
        preview: np.ndarray,  # the fixed latents of every frame
        save_checkpoint: Callable[[int], Path],
        progress: ProgressLog,
        learning_rates: Callable[[], tuple[float, float]],
    ) -> None:
        from tqdm import tqdm

        self.schedule, self.sampler, self.preview = schedule, sampler, preview
        self.save_checkpoint, self.progress, self.learning_rates = save_checkpoint, progress, learning_rates
        self.best = _best_score(schedule.run_dir)
        self.reference: tuple | None = None  # measures of real images fidelity is judged against, taken on first use
        self.sums: dict[str, float] = {}
        self.window_start, self.window_steps = time.perf_counter(), 0
        self.bar = tqdm(
            total=schedule.total_steps,
            desc="train",
            unit="step",
            file=sys.__stderr__,
            disable=sys.__stderr__ is None or not sys.__stderr__.isatty(),
        )

    def start(self, step: int) -> None:
        self.bar.update(step)
        if step == 0:
            self.frame(0)

    def frame(self, step: int) -> None:
        """frames/step_<step>.png, and training.gif again with it (so the GIF is always up to date)."""
        save_frame(self.schedule.run_dir, f"step_{step:07d}", self.sampler(self.preview, training=False).numpy())
        write_gif(self.schedule.run_dir)

    def after_step(self, step: int, losses: dict) -> None:
        cfg, total = self.schedule.cfg, self.schedule.total_steps
        self.window_steps += 1
        for key, value in losses.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.bar.update(1)
        last = step == total
        if step % cfg.log_interval == 0 or last:
            self._log(step)
        if step % cfg.frame_interval == 0 or step % self.schedule.steps_per_epoch == 0 or last:
            self.frame(step)
        saved = None
        if step % cfg.checkpoint_interval == 0 or last:
            saved = self.save_checkpoint(step)
        if cfg.eval_interval and (step % cfg.eval_interval == 0 or last):
            self._evaluate(step, saved or self.save_checkpoint(step))

    def close(self) -> None:
        self.bar.close()
        self.progress.close()

    def _log(self, step: int) -> None:
        cfg, total = self.schedule.cfg, self.schedule.total_steps
        elapsed = time.perf_counter() - self.window_start
        g_lr, d_lr = self.learning_rates()
        record = {
            "step": step,
            "total_steps": total,
            "epoch": self.schedule.epoch_of(step),
            "epochs": self.schedule.epochs,
            **{k: v / self.window_steps for k, v in self.sums.items()},
            "g_lr": g_lr,
            "d_lr": d_lr,
            "images_per_s": self.window_steps * cfg.batch_size / elapsed,
            "eta_s": (total - step) * elapsed / self.window_steps,
        }
        if not all(math.isfinite(record[k]) for k in ("d_loss", "g_loss")):
            raise RuntimeError(f"non-finite loss at step {step}: {record}")
        self.progress.losses(record)
        self.bar.set_postfix(d=f"{record['d_loss']:.2f}", g=f"{record['g_loss']:.2f}")
        if self.bar.disable:
            print(
                f"step {step}/{total} d_loss {record['d_loss']:.3f} g_loss {record['g_loss']:.3f} "
                f"W {record['wasserstein']:.3f} gp {record['gp']:.3f} {record['images_per_s']:.0f} img/s"
            )
        self.sums, self.window_start, self.window_steps = {}, time.perf_counter(), 0

    def _evaluate(self, step: int, saved: Path) -> None:
        """In-training fidelity on a small batch; keep the checkpoint with the best (lowest) score."""
        from training.evaluate import quick_fidelity, reference_measures

        cfg = self.schedule.cfg
        if self.reference is None:
            self.reference = reference_measures(self.schedule.images, cfg.eval_samples, cfg.seed)
        figures = quick_fidelity(self.sampler, self.reference, cfg.eval_samples, seed=cfg.seed + step)
        self.progress.fidelity(step, figures)
        print(f"fidelity at step {step}: score {figures['score']:.3f}")
        if figures["score"] < self.best:
            checkpoint.keep_best(
                self.schedule.run_dir, saved, {"step": step, "score": figures["score"], "fidelity": figures}
            )
            self.best = figures["score"]


def _best_score(run_dir: Path) -> float:
    path = checkpoint.checkpoint_dir(run_dir) / "best.json"
    return json.loads(path.read_text())["score"] if path.exists() else math.inf
