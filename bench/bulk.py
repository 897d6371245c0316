"""Bulk generation's images/s against the bare forward pass of the same model, side by side.

    python bench/bulk.py                                      # voronoi64's newest version, batch 128, h5
    python bench/bulk.py --batch 16 --shard-size 10000 --shards 3 --rounds 3 --format h5

In alternating rounds (machine noise hits both alike): the bare forward pass (the version's `sample`
signature called back to back at `--batch` images, outputs fetched as numpy, nothing else), and
`service.bulk.generate` writing `--shards` shards of `--shard-size` images to a temporary directory,
as `python -m service.bulk` does (forward passes, encoding, sha256, atomic writes, manifest). Prints
the median images/s of each, the median of the rounds' ratios (target: bulk >= 90% of bare forward, writing h5) and the
seconds one shard takes; and, less noisy on a shared machine, what writing a shard (encoding,
sha256, atomic write) costs beside its forward passes, timed serially.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = 0.90


def bare_rate(generator, batch: int, images: int) -> float:
    """images/s of `images` images through the sample signature alone, `batch` at a time."""
    import tensorflow as tf

    sample = generator._loaded.signatures["sample"]
    seeds = tf.fill([batch], tf.constant(7, tf.int64))
    calls = -(-images // batch)
    started = time.perf_counter()
    for call in range(calls):
        indices = tf.range(call * batch, (call + 1) * batch, dtype=tf.int64)
        sample(seeds=seeds, indices=indices)["images"].numpy()
    return calls * batch / (time.perf_counter() - started)


def bulk_rate(generator, spec, out: Path, batch: int) -> float:
    """images/s of service.bulk writing every shard of `spec` into an empty `out`."""
    from service.bulk import generate

    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = generate(generator, spec, out, range(spec.shards), batch)
    assert result["written"] == spec.shards and result["manifest"]["complete"]
    return spec.count / (time.perf_counter() - started)


def writing_cost(generator, spec, out: Path, batch: int) -> tuple[float, float]:
    """(seconds of the forward passes, seconds of encoding + sha256 + atomic write) of shard 0, serially.

    Less noisy than two rates on a shared machine: what bulk adds to the forward pass, which the
    command overlaps with the next shard's forward passes."""
    from service import bulk, shards

    out.mkdir(parents=True, exist_ok=True)
    first, n = spec.span(0)
    started = time.perf_counter()
    images = bulk.images_of(generator, spec.seed, first, n, batch)
    computed = time.perf_counter()
    shards.save_shard(out, spec.file_name(0), bulk.encode(generator, spec, first, images))
    return computed - started, time.perf_counter() - computed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models_store" / "voronoi64", help="a model's folder")
    parser.add_argument("--version", type=int, help="default: the newest")
    parser.add_argument("--batch", type=int, default=128, help="images per forward pass (MICROGAN_MAX_BATCH)")
    parser.add_argument("--shard-size", type=int, default=10000)
    parser.add_argument("--shards", type=int, default=3, help="shards per bulk round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--format", choices=("h5", "npy", "zip"), default="h5")
    args = parser.parse_args()

    from service.bulk import _version_dir
    from service.generator import Generator, configure_tensorflow
    from service.shards import SetSpec

    path = _version_dir(args.model.parent, args.model.name, args.version)
    generator = Generator(path, configure_tensorflow("auto"), args.batch)
    count = args.shard_size * args.shards
    spec = SetSpec(generator.name, generator.version, generator.precision, 7, count, args.shard_size, args.format,
                   generator.z_dim)  # fmt: skip
    print(
        f"{generator} | batch {args.batch} | {args.shards} x {args.shard_size} images as {args.format} per round | "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    bare, bulk, costs = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        bare_rate(generator, args.batch, args.batch * 4)  # warm-up
        for round_ in range(args.rounds):
            bare.append(bare_rate(generator, args.batch, count))
            bulk.append(bulk_rate(generator, spec, Path(tmp) / "set", args.batch))
            costs.append(writing_cost(generator, spec, Path(tmp) / "cost", args.batch))
            print(
                f"round {round_ + 1}: bare forward {bare[-1]:.0f} images/s, bulk {bulk[-1]:.0f} images/s "
                f"({bulk[-1] / bare[-1]:.2f})"
            )
    forward, written = statistics.median(bare), statistics.median(bulk)
    ratio = statistics.median(b / f for b, f in zip(bulk, bare))  # each round's pair ran back to back
    print(f"bare forward (median): {forward:.0f} images/s")
    print(f"bulk, {args.format} (median): {written:.0f} images/s; one shard of {args.shard_size}: "
          f"{args.shard_size / written:.2f} s")  # fmt: skip
    forward_s, write_s = (statistics.median(c[i] for c in costs) for i in (0, 1))
    print(
        f"one shard, serially: forward passes {forward_s:.2f} s, encoding + sha256 + atomic write {write_s:.3f} s "
        f"({write_s / forward_s:.1%} of its forward passes)"
    )
    verdict = "met" if ratio >= TARGET else "missed"
    print(f"bulk / bare forward, median of the rounds: {ratio:.2f} (target >= {TARGET:.2f}: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
