"""Fidelity: are generated microstructures statistically like real ones?

    python -m training evaluate --model models_store/voronoi64/1 --data data/test.zip --n 2000 \\
        --train-data data/voronoi.zip --out report.json --figure report.png

Generates n images with the model's `sample` signature (seed 0, indices 0..n-1), takes 2n real
images from --data (n to compare with, n more for the real-vs-real floor), and prints each distance
of microstructure.compare beside its floor with a verdict. With --train-data it also checks
memorisation (the real images must then be held out from the training set). During training,
`quick_fidelity` runs the same comparison on a small batch to pick the best checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from microstructure.compare import compare
from microstructure.images import grid, to_uint8
from microstructure.stats import grain_counts, measure
from training.errors import UserError
from training.files import atomic_path, write_atomic

SAMPLE_SEED = 0
_CHUNK = 256


def _real_split(real: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint random sets of real images of n each (fewer, half each, when there are < 2n)."""
    order = np.random.default_rng(seed).permutation(len(real))
    half = min(n, len(real) // 2)
    if half < 16:
        raise UserError(f"need at least 32 real images to evaluate, got {len(real)}")
    return real[order[:half]], real[order[half : 2 * half]]


def _flat(report: dict) -> dict:
    """The compact figures logged during training and put on model cards."""
    figures = {"score": report["score"], "passed": report["passed"], "failed": report["failed"]}
    for name, d in report["distances"].items():
        figures[name] = d["value"]
        figures[f"{name}_floor"] = d["floor"]
    for key in (
        "grains_per_image",
        "boundary_fraction",
        "solidity_mean",
        "convex_share",
        "defect_free_share",
        "dangling_ends_per_image",
        "detached_per_image",
    ):
        figures[key] = report["generated"][key]
        figures[f"real_{key}"] = report["real"][key]
    figures["n"] = report["sizes"]["generated"]
    return figures


def reference_measures(images: np.ndarray, n: int, seed: int) -> tuple:
    """Measures of two disjoint sets of n training images, taken once per run for quick_fidelity."""
    real, floor = _real_split(images, n, seed)
    return measure(to_uint8(real)), measure(to_uint8(floor))


def quick_fidelity(generator, reference: tuple, n: int, seed: int) -> dict:
    """Compare n samples of a Keras generator with the run's reference sets; compact figures with a score."""
    z = np.random.default_rng([seed, 1]).standard_normal((n, generator.input_shape[-1]), np.float32)
    fake = to_uint8(np.concatenate([generator(z[i : i + _CHUNK], training=False).numpy() for i in range(0, n, _CHUNK)]))
    return _flat(compare(fake, *reference))


def load_model(model_dir: Path):
    import tensorflow as tf

    if not (model_dir / "saved_model.pb").exists():
        raise UserError(f"{model_dir}: not an exported model version (no saved_model.pb)")
    return tf.saved_model.load(str(model_dir))


def sample_model(model, n: int, seed: int = SAMPLE_SEED, grains: int | None = None) -> np.ndarray:
    """Images 0..n-1 of `seed` from a loaded SavedModel's sample signature (or, with `grains`, its
    sample_grains signature at that count), uint8 (n, 64, 64)."""
    import tensorflow as tf

    out = []
    for start in range(0, n, _CHUNK):
        indices = tf.range(start, min(start + _CHUNK, n), dtype=tf.int64)
        seeds = tf.fill(tf.shape(indices), tf.constant(seed, tf.int64))
        if grains is None:
            images = model.signatures["sample"](seeds=seeds, indices=indices)
        else:
            counts = tf.fill(tf.shape(indices), tf.constant(grains, tf.int32))
            images = model.signatures["sample_grains"](seeds=seeds, indices=indices, grains=counts)
        out.append(images["images"].numpy())
    return np.concatenate(out)


def evaluate_model(model_dir: Path, data: str, n: int = 2000, train_data: str | None = None) -> dict:
    """The eight checks on n samples of `sample`; for a model conditioned on grains also how well its
    images obey the requested count (`grain_accuracy`, n images spread over the trained range)."""
    from training.loading import load

    model = load_model(Path(model_dir))
    fake = sample_model(model, n)
    real, floor = _real_split(to_uint8(load(data).images[..., 0]), n, seed=1)
    train = to_uint8(load(train_data).images[..., 0]) if train_data else None
    measures = [measure(x) for x in (fake, real, floor)]
    report = compare(measures[0], measures[1], measures[2], train=train)
    report["summary"] = _flat(report)
    if "sample_grains" in model.signatures:
        trained = model.grain_histogram.numpy()[:, 0]
        draw = lambda count, m: sample_model(model, m, grains=count)  # noqa: E731
        report["conditional"] = grain_accuracy(draw, int(trained.min()), int(trained.max()), n)
        report["summary"].update(
            grains_exact=report["conditional"]["exact"], grains_within_1=report["conditional"]["within_1"]
        )
    report["_images"] = (fake, real, measures)
    return report


def grain_accuracy(draw, low: int, high: int, n: int) -> dict:
    """Shares of images with exactly the requested grain count and within +-1, overall and per count:
    about n images in all, the same number at every count low..high; `draw(count, m)` gives m uint8
    images asked for that count (from a SavedModel or a Keras generator)."""
    per = max(16, n // (high - low + 1))
    rows = {}
    for count in range(low, high + 1):
        found = grain_counts(draw(count, per))
        rows[str(count)] = {
            "exact": float((found == count).mean()),
            "within_1": float((abs(found - count) <= 1).mean()),
            "mean": float(found.mean()),
        }
    return {
        "images_per_count": per,
        "exact": float(np.mean([r["exact"] for r in rows.values()])),
        "within_1": float(np.mean([r["within_1"] for r in rows.values()])),
        "per_count": rows,
    }


def keras_grain_accuracy(generator, record: dict, n: int, seed: int) -> dict:
    """grain_accuracy of a conditional Keras generator over its training record's range."""
    z = np.random.default_rng([seed, 2]).standard_normal((n, generator.input["z"].shape[-1]), np.float32)

    def draw(count: int, m: int) -> np.ndarray:
        chunks = [
            generator({"z": z[i : min(i + _CHUNK, m)], "grains": np.full(min(_CHUNK, m - i), count, np.int32)})
            for i in range(0, m, _CHUNK)
        ]
        return to_uint8(np.concatenate([c.numpy() for c in chunks]))

    return grain_accuracy(draw, record["min"], record["max"], n)


def print_report(report: dict) -> None:
    print(f"{'distance':24s} {'value':>10s} {'floor':>10s} {'limit':>10s}  verdict")
    for name, d in report["distances"].items():
        verdict = "ok" if d["pass"] else "FAIL"
        print(f"{name:24s} {d['value']:10.4f} {d['floor']:10.4f} {d['limit']:10.4f}  {verdict}")
    gen, real = report["generated"], report["real"]
    print(f"\n{'statistic':24s} {'generated':>10s} {'real':>10s}")
    for key in (
        "grains_per_image",
        "grain_area_mean",
        "boundary_fraction",
        "solidity_mean",
        "convex_share",
        "junctions_per_image",
        "dangling_ends_per_image",
        "detached_per_image",
        "defect_free_share",
    ):
        print(f"{key:24s} {gen[key]:10.3f} {real[key]:10.3f}")
    if "conditional" in report:
        cond = report["conditional"]
        print(f"\n{'grains asked':24s} {'exact':>10s} {'within 1':>10s} {'mean':>10s}")
        for count, row in cond["per_count"].items():
            print(f"{count:24s} {row['exact']:10.3f} {row['within_1']:10.3f} {row['mean']:10.2f}")
        print(f"{'all':24s} {cond['exact']:10.3f} {cond['within_1']:10.3f}  ({cond['images_per_count']} per count)")
    sizes = report["sizes"]
    print(
        f"\n{sizes['generated']} generated vs {sizes['real']} real (floor from {sizes['real_floor']} more); "
        f"score {report['score']:.3f}; {'PASSED' if report['passed'] else 'FAILED: ' + ', '.join(report['failed'])}"
    )


def write_figure(report: dict, path: Path) -> None:
    """S2 curves, grain-area histograms, and a sample grid beside a real grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fake, real, (m_fake, m_real, _) = report["_images"]
    figure, axes = plt.subplots(2, 2, figsize=(10, 9))
    axes[0, 0].plot(report["generated"]["s2"], label="generated")
    axes[0, 0].plot(report["real"]["s2"], label="real")
    axes[0, 0].set(title="two-point correlation S2 (boundary)", xlabel="r (px)")
    axes[0, 0].legend()
    bins = np.linspace(0, max(m_real.grain_area.max(), 1), 40)
    axes[0, 1].hist(m_real.grain_area, bins=bins, alpha=0.5, density=True, label="real")
    axes[0, 1].hist(m_fake.grain_area, bins=bins, alpha=0.5, density=True, label="generated")
    axes[0, 1].set(title="grain area (px)")
    axes[0, 1].legend()
    for ax, images, title in ((axes[1, 0], fake, "generated"), (axes[1, 1], real, "real")):
        ax.imshow(grid(images[:16], columns=4), cmap="gray", vmin=0, vmax=255)
        ax.set(title=title)
        ax.axis("off")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=80)
    plt.close(figure)


def run_from_cli(args) -> int:
    if args.n < 16:
        raise UserError(f"--n must be at least 16, got {args.n}")
    report = evaluate_model(Path(args.model), args.data, args.n, args.train_data)
    print_report(report)
    if args.figure:
        write_figure(report, Path(args.figure))
    report.pop("_images")
    if args.out:
        write_atomic(Path(args.out), json.dumps(report, indent=2))
    return 0
