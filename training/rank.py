"""Rank a run's kept checkpoints by fidelity against held-out data, to choose the one to export.

    python -m training rank --run-dir runs/voronoi64 --data data/voronoi-test.zip --n 1000
    python -m training rank --run-dir runs/voronoi64 --data data/voronoi-test.zip --steps 3500,4000 --weights raw

The in-training evaluation compares 256 samples with training images and keeps one `best.npz`; that
is a noisy selector (a model that draws few boundaries has few defects). This measures every kept
checkpoint (or the listed steps) the same way `evaluate` measures an export: n generated images from
one fixed set of latents, so checkpoints are compared on the same noise, against n held-out images,
with the real-vs-real floor from n more. One row per checkpoint and weight set, printed as each is
done; the lowest score is marked and the export command for it printed.
"""

from __future__ import annotations

import json
from pathlib import Path

from training import checkpoint
from training.config import from_dict
from training.errors import UserError
from training.files import write_atomic

LATENT_SEED = 11  # the latents every checkpoint is measured on
REAL_SEED = 1  # which held-out images are compared with, as in `evaluate`

_COLUMNS = (
    ("score", "score", "{:.3f}"),
    ("defect_free_share", "defect-free", "{:.3f}"),
    ("grains_per_image", "grains", "{:.2f}"),
    ("convex_share", "convex", "{:.3f}"),
    ("s2_error", "S2", "{:.4f}"),
    ("grain_area_w1", "area W1", "{:.3f}"),
    ("dangling_ends_per_image", "dangling", "{:.2f}"),
    ("detached_per_image", "detached", "{:.2f}"),
)
_CONDITIONAL_COLUMNS = (("grains_exact", "exact", "{:.3f}"), ("grains_within_1", "within 1", "{:.3f}"))


def candidates(run_dir: Path, steps: str | None) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints to rank: all kept ones plus best.npz, or the listed steps."""
    if not checkpoint.checkpoint_dir(run_dir).is_dir():
        raise UserError(f"{run_dir}: no checkpoints/ (not a training run, or it has not saved yet)")
    kept = dict(checkpoint.list_checkpoints(run_dir))
    best = checkpoint.checkpoint_dir(run_dir) / "best.json"
    if best.exists():
        kept.setdefault(json.loads(best.read_text())["step"], best.with_suffix(".npz"))
    if not kept:
        raise UserError(f"{run_dir}: no checkpoints kept")
    if steps is None:
        return sorted(kept.items())
    try:
        wanted = sorted({int(s) for s in steps.split(",") if s.strip()})
    except ValueError:
        raise UserError(f"--steps {steps!r}: expected step numbers separated by commas") from None
    missing = [s for s in wanted if s not in kept]
    if missing or not wanted:
        raise UserError(
            f"--steps: no checkpoint at step {missing or steps} (kept: {', '.join(map(str, sorted(kept)))})"
        )
    return [(s, kept[s]) for s in wanted]


def rank(run_dir: Path, data: str, n: int, weights: str = "both", steps: str | None = None) -> list[dict]:
    """Measure each candidate; returns rows {step, weights, figures} in step order, printing each."""
    if n < 16:
        raise UserError(f"--n must be at least 16, got {n}")
    chosen = candidates(run_dir, steps)  # before TensorFlow loads: bad arguments fail at once

    from training.evaluate import keras_grain_accuracy, quick_fidelity, reference_measures
    from training.loading import load
    from training.networks import build_generator, unconditional

    reference = reference_measures(load(data).images[..., 0], n, REAL_SEED)
    meta = run_dir / "config.json"
    grains = json.loads(meta.read_text()).get("data", {}).get("grains") if meta.exists() else None
    groups = {"raw": ("generator",), "ema": ("generator_ema",), "both": ("generator", "generator_ema")}[weights]
    networks: dict = {}  # config -> (generator, sampler): one build per architecture (runs keep theirs: one)
    rows = []
    print(_header(bool(grains)), flush=True)
    for step, path in chosen:
        try:
            state = checkpoint.load(path)
        except ValueError as error:
            print(f"skipping step {step}: {error}", flush=True)
            continue
        config = from_dict(state["config"])
        if config not in networks:
            built = build_generator(config)
            networks[config] = (built, unconditional(built))
        generator, sampler = networks[config]
        for group in groups:
            if not state.get(group):
                continue
            for variable, value in zip(generator.weights, state[group]):
                variable.assign(value)
            figures = quick_fidelity(sampler, reference, n, seed=LATENT_SEED)
            if grains:  # a conditional run: how well its images obey the count asked for
                accuracy = keras_grain_accuracy(generator, grains, n, seed=LATENT_SEED)
                figures.update(grains_exact=accuracy["exact"], grains_within_1=accuracy["within_1"])
            row = {"step": step, "weights": "raw" if group == "generator" else "ema", "figures": figures}
            rows.append(row)
            print(_line(row), flush=True)
    if not rows:
        raise UserError(f"{run_dir}: no readable checkpoint with {weights} weights among the candidates")
    return rows


def _columns(conditional: bool) -> tuple:
    return _COLUMNS + (_CONDITIONAL_COLUMNS if conditional else ())


def _header(conditional: bool = False) -> str:
    return f"{'step':>7} {'weights':7} " + " ".join(f"{title:>11}" for _, title, _ in _columns(conditional))


def _line(row: dict, mark: str = "") -> str:
    columns = _columns("grains_exact" in row["figures"])
    cells = " ".join(f"{fmt.format(row['figures'][key]):>11}" for key, _, fmt in columns)
    return f"{row['step']:>7} {row['weights']:7} {cells}{mark}"


def run_from_cli(args) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    rows = rank(run_dir, args.data, args.n, args.weights, args.steps)
    best = min(rows, key=lambda row: row["figures"]["score"])
    print(f"\nlowest score (best): step {best['step']}, {best['weights']} weights")
    print(_line(best, "  <- best"))
    # A best.npz whose step is no longer among the ckpt-*.npz files is exported as `--checkpoint best`.
    kept = (checkpoint.checkpoint_dir(run_dir) / f"ckpt-{best['step']:07d}.npz").exists()
    print(
        f"export it: python -m training export --run-dir {run_dir} --checkpoint {best['step'] if kept else 'best'} "
        f"--weights {best['weights']} --name NAME --data {args.data}"
    )
    if args.out:
        write_atomic(Path(args.out), json.dumps({"n": args.n, "data": args.data, "rows": rows, "best": best}, indent=2))
    return 0
