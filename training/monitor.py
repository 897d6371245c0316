"""What a run shows while it trains: progress lines, loss CSV, TensorBoard, frames, GIF, loss plot.

    python -m training gif runs/cpu        # training.gif from runs/cpu/frames/step_*.png

Frames all come from one fixed 4x4 latent grid chosen at the start of the run (and stored in every
checkpoint), so consecutive frames are comparable.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from microstructure.images import grid, to_uint8
from training.errors import UserError
from training.files import atomic_path

# What a progress line holds (progress.jsonl; losses.csv has the columns; TensorBoard the scalars).
STEP_LOSSES = ("d_loss", "g_loss", "wasserstein", "gp")  # the means of what each training step returns
SCALARS = (*STEP_LOSSES, "g_lr", "d_lr", "images_per_s")
LOSS_COLUMNS = ("step", "epoch", *STEP_LOSSES, "g_lr", "d_lr")


def save_png(path: Path, image: np.ndarray, scale: int = 1) -> None:
    picture = Image.fromarray(image)
    if scale > 1:
        picture = picture.resize((image.shape[1] * scale, image.shape[0] * scale), Image.Resampling.NEAREST)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")


def save_frame(run_dir: Path, name: str, images: np.ndarray) -> Path:
    """Save a 4x4 grid of [-1, 1] images as frames/<name>.png."""
    path = run_dir / "frames" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(path, grid(to_uint8(images[..., 0] if images.ndim == 4 else images), columns=4))
    return path


class ProgressLog:
    """Appends progress.jsonl lines, losses.csv rows and TensorBoard scalars."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.jsonl = open(run_dir / "progress.jsonl", "a", buffering=1)
        new_csv = not (run_dir / "losses.csv").exists()
        self.csv_file = open(run_dir / "losses.csv", "a", newline="", buffering=1)
        self.csv = csv.writer(self.csv_file)
        if new_csv:
            self.csv.writerow(LOSS_COLUMNS)
        self.tb = None

    def _writer(self):
        if self.tb is None:
            import tensorflow as tf

            self.tb = tf.summary.create_file_writer(str(self.run_dir / "tb"))
        return self.tb

    def line(self, record: dict) -> None:
        self.jsonl.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")

    def losses(self, record: dict) -> None:
        self.line(record)
        self.csv.writerow([record[c] for c in LOSS_COLUMNS])
        import tensorflow as tf

        with self._writer().as_default(step=record["step"]):
            for key in SCALARS:
                tf.summary.scalar(key, record[key])

    def fidelity(self, step: int, figures: dict) -> None:
        self.line({"step": step, "fidelity": figures})
        import tensorflow as tf

        with self._writer().as_default(step=step):
            for key, value in figures.items():
                if isinstance(value, (int, float)):
                    tf.summary.scalar(f"fidelity/{key}", value)

    def close(self) -> None:
        self.jsonl.close()
        self.csv_file.close()
        if self.tb is not None:
            self.tb.flush()


def frame_paths(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "frames").glob("step_*.png"))


def write_gif(run_dir: Path, fps: float = 8.0, scale: int = 2) -> Path:
    """Assemble frames/step_*.png into training.gif (atomically); training rewrites it after every frame."""
    import imageio.v2 as imageio

    frames = frame_paths(run_dir)
    if not frames:
        raise UserError(f"{run_dir}: no frames yet (frames/step_*.png)")
    pictures: list = []  # (H, W) uint8 frames
    for path in frames:
        image = np.asarray(Image.open(path).convert("L"))
        pictures.append(np.kron(image, np.ones((scale, scale), np.uint8)))
    out = run_dir / "training.gif"
    durations = [1000 / fps] * (len(pictures) - 1) + [2000]  # ms; hold the last frame
    with atomic_path(out) as tmp:  # (a one-frame GIF takes its duration as a number, not a list)
        imageio.mimsave(tmp, pictures, format="GIF", duration=durations if len(durations) > 1 else 2000, loop=0)
    return out


def fidelity_history(run_dir: Path) -> list[tuple[int, dict]]:
    """(step, figures) of every in-training evaluation in progress.jsonl, in order."""
    path = run_dir / "progress.jsonl"
    if not path.exists():
        return []
    history = []
    with open(path) as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a crash
                continue
            if "fidelity" in record:
                history.append((record["step"], record["fidelity"]))
    return history


def plot_losses(run_dir: Path) -> Path:
    """losses.png from losses.csv: both losses, the Wasserstein estimate and the penalty; below them,
    when the run evaluates as it trains, its fidelity score and share of defect-free samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(run_dir / "losses.csv") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise UserError(f"{run_dir}: losses.csv has no rows yet")
    step = [int(r["step"]) for r in rows]
    history = fidelity_history(run_dir)
    panels = 3 if history else 2
    figure, axes = plt.subplots(panels, 1, figsize=(8, 3 * panels), sharex=True)
    top, bottom = axes[0], axes[1]
    for key in ("d_loss", "g_loss"):
        top.plot(step, [float(r[key]) for r in rows], label=key)
    top.legend()
    top.set_ylabel("loss")
    for key in ("wasserstein", "gp"):
        bottom.plot(step, [float(r[key]) for r in rows], label=key)
    bottom.legend()
    if history:
        score_axis = axes[2]
        steps = [s for s, _ in history]
        score_axis.plot(steps, [f["score"] for _, f in history], "o-", color="tab:red", label="fidelity score")
        score_axis.set_ylabel("score (lower is better)", color="tab:red")
        share_axis = score_axis.twinx()
        share_axis.plot(steps, [f["defect_free_share"] for _, f in history], "s-", color="tab:green")
        share_axis.set_ylabel("defect-free share", color="tab:green")
        share_axis.set_ylim(0, 1.05)
    axes[-1].set_xlabel("generator step")
    figure.tight_layout()
    out = run_dir / "losses.png"
    with atomic_path(out) as tmp:
        figure.savefig(tmp, format="png", dpi=80)
    plt.close(figure)
    return out
