"""Cost of a tessellation model's geometry against the forward pass that made its sites, side by side.

    python bench/geometry_cost.py                                  # models_store/voronoi64, latest version
    python bench/geometry_cost.py --model models_store/voronoi64/2 --n 32 --rounds 7

For n images of one seed, in alternating rounds (machine noise hits all alike): the `partition`
signature (the forward pass giving sites and weights), the exact polygons of every grain
(microstructure.tessellation, what format=json is made of), and the n rasters at 512 px. Prints the
median of each and their ratios to the forward pass; the target is polygons < forward (ratio < 1).
`bench/serve.py` runs this too, beside its HTTP rows for format=json and size=512.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def latest_version(model_dir: Path) -> Path:
    versions = sorted((int(p.name), p) for p in model_dir.iterdir() if p.name.isdigit())
    if not versions:
        raise SystemExit(f"{model_dir}: no versions")
    return versions[-1][1]


def measure(model_path: Path, n: int = 32, rounds: int = 7) -> dict[str, float]:
    """Median seconds of forward, polygons and 512 px rasters for n images; prints a table."""
    import numpy as np
    import tensorflow as tf

    from microstructure.tessellation import rasterise, scale, tessellate

    model = tf.saved_model.load(str(model_path))
    if "partition" not in model.signatures or "sites" not in model.signatures["partition"].structured_outputs:
        raise SystemExit(f"{model_path}: not a tessellation (laguerre) model")
    partition = model.signatures["partition"]
    seeds, indices = tf.fill([n], tf.constant(7, tf.int64)), tf.range(n, dtype=tf.int64)
    out = partition(seeds=seeds, indices=indices)
    sites, weights = out["sites"].numpy().astype(np.float64), out["weights"].numpy().astype(np.float64)

    def forward():
        partition(seeds=seeds, indices=indices)["sites"].numpy()

    def polygons():
        tessellate(sites, weights, 64)

    def rasters():
        for s, w in zip(*scale(sites, weights, 8)):
            rasterise(s, w, 512)

    tasks = {"forward (partition signature)": forward, "polygons (tessellate)": polygons, "rasters at 512 px": rasters}
    for task in tasks.values():
        task()  # warm up
    times: dict[str, list[float]] = {name: [] for name in tasks}
    for _ in range(rounds):
        for name, task in tasks.items():
            began = time.perf_counter()
            task()
            times[name].append(time.perf_counter() - began)
    median = {name: statistics.median(values) for name, values in times.items()}
    forward_s = median["forward (partition signature)"]
    print(f"geometry of n={n} images of {model_path}:")
    for name, seconds in median.items():
        print(f"  {name:32s} {1000 * seconds:8.2f} ms   x{seconds / forward_s:.2f} of the forward pass")
    ratio = median["polygons (tessellate)"] / forward_s
    print(f"{'PASS' if ratio < 1 else 'MISS'}  polygons / forward = {ratio:.2f}  (target < 1)")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a version directory (default: models_store/voronoi64, latest)")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    measure(args.model or latest_version(ROOT / "models_store" / "voronoi64"), args.n, args.rounds)


if __name__ == "__main__":
    main()
