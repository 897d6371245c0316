"""Benchmark writing and loading the synthetic Voronoi zip against issue 2's targets.

    python bench/synthetic.py                  # 20,000 images, as in the issue
    python bench/synthetic.py --count 2000 --keep data/bench.zip

Prints images/s for writing the default zip (100 images per H5 file), images/s for loading it with
`training.loading.load`, and the peak memory of loading as a multiple of the float32 array it returns:
once as the rise of ru_maxrss in a fresh process (everything, including HDF5's buffers), once as the
tracemalloc peak of load() (Python and NumPy allocations only). Targets: generation >= 2,000
images/s; loading 20,000 images in <= 10 s (>= 2,000 images/s); peak memory <= 2x the array.
Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

# Runnable from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MIN_RATE = 2000  # images/s, for generation and for loading
MAX_MEMORY_RATIO = 2.0  # peak memory over the float32 array


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def measure_load(path: str) -> dict:
    """Load `path` twice in this (fresh) process: timed with ru_maxrss, then under tracemalloc."""
    from training.loading import load

    baseline = _max_rss_bytes()
    start = time.perf_counter()
    data = load(path)
    seconds = time.perf_counter() - start
    peak_rss = _max_rss_bytes()
    count, array_bytes = len(data.images), data.images.nbytes
    del data
    gc.collect()

    tracemalloc.start()
    load(path)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "count": count,
        "seconds": seconds,
        "array_bytes": array_bytes,
        "rss_rise": peak_rss - baseline,
        "traced_peak": traced_peak,
    }


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20000, help="images to write and load (default 20000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-file", type=int, default=100, help="images per H5 file (default 100)")
    parser.add_argument("--keep", help="write the zip here and keep it (default: a temporary file)")
    parser.add_argument("--measure-load", metavar="PATH", help=argparse.SUPPRESS)  # the fresh-process side
    args = parser.parse_args()
    if args.measure_load:
        print(json.dumps(measure_load(args.measure_load)))
        return 0

    from training.synthetic import write_zip
    from training.voronoi import VoronoiSpec

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.keep or Path(scratch) / "voronoi.zip")

        # Generation: the default zip, in this process.
        start = time.perf_counter()
        write_zip(out, VoronoiSpec(), args.count, args.seed, args.per_file)
        seconds = time.perf_counter() - start
        write_rate = args.count / seconds
        size = out.stat().st_size / 2**20
        print(
            f"generation  {args.count} images in {seconds:.2f} s = {write_rate:,.0f} images/s "
            f"(per-file {args.per_file}, zip {size:.1f} MiB; target >= {MIN_RATE:,})  "
            f"{_verdict(write_rate >= MIN_RATE)}"
        )

        # Loading: in a fresh process, so its memory peak is the load's alone.
        result = subprocess.run(
            [sys.executable, __file__, "--measure-load", str(out)], capture_output=True, text=True, check=True
        )
        measured = json.loads(result.stdout.splitlines()[-1])

    load_rate = measured["count"] / measured["seconds"]
    print(
        f"loading     {measured['count']} images in {measured['seconds']:.2f} s = {load_rate:,.0f} images/s "
        f"(target >= {MIN_RATE:,}: 20,000 in <= 10 s)  {_verdict(load_rate >= MIN_RATE)}"
    )
    array, rss, traced = measured["array_bytes"], measured["rss_rise"], measured["traced_peak"]
    memory_ratio = max(rss, traced) / array
    print(
        f"memory      float32 array {array / 2**20:.1f} MiB; peak RSS rise {rss / 2**20:.1f} MiB "
        f"= {rss / array:.2f}x; tracemalloc peak {traced / 2**20:.1f} MiB = {traced / array:.2f}x "
        f"(target <= {MAX_MEMORY_RATIO:g}x)  {_verdict(memory_ratio <= MAX_MEMORY_RATIO)}"
    )
    met = write_rate >= MIN_RATE and load_rate >= MIN_RATE and memory_ratio <= MAX_MEMORY_RATIO
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
