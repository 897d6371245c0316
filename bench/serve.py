"""Load test of the generation service against the bare SavedModel and a naive endpoint (issue 5's targets).

    python bench/serve.py                                   # models_store's default (or only) model
    python bench/serve.py --models-dir /tmp/store --model tiny --duration 3
    python bench/serve.py --scratch                         # a throwaway cpu-preset export (untrained, same cost)

In one run, on loopback only (127.0.0.1):
  1. bare forward: images/s of the version's `sample` signature called in-process at batch sizes
     1..128, and the best batch size (a hint for MICROGAN_MAX_BATCH; the service runs with its own
     defaults unless --max-batch / --no-pad say otherwise);
  2. the service (`python -m service`) and a naive baseline endpoint (one model call per request with
     exactly its n images, no batching, FastAPI's thread pool for concurrency), each in its own
     process, loaded by closed-loop clients: n=1 and n=32 at concurrency 1, 8 and 32, default formats
     (png for n=1, zip for n=32), each cell on one server then the other; a cell runs for --duration
     seconds or --max-requests requests, whichever ends first;
  3. for a tessellation (laguerre) model, service rows for format=json (n=32) and size=512 (n=1) and
     bench/geometry_cost.py's polygons-versus-forward-pass ratio (target: below 1);
  4. images/s, p50/p99 latency, the server's CPU time per image and errors per cell, and the ratios
     against the targets: service n=32 c=8 >= 85% of bare forward (re-measured next to that cell);
     service n=1 c=32 >= 3x naive n=1 c=32; zero errors. On a machine shared with other jobs images/s
     follow the CPU share each process gets; CPU per image does not, so it is printed too.
Exits 1 if a target is missed. The client is a minimal asyncio HTTP/1.1 client (keep-alive, one
connection per concurrent client) so that it takes as little of the shared CPU as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable from a checkout without installing the package

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)
CELLS = [(n, c) for n in (1, 32) for c in (1, 8, 32)]
# Tessellation models only (issue 16): grain polygons as JSON, and a 512 px render.
GEOMETRY_CELLS = [(32, 8, "&format=json"), (1, 8, "&size=512")]
TARGET_FORWARD_SHARE = 0.85  # service n=32 c=8 vs bare forward
TARGET_NAIVE_RATIO = 3.0  # service n=1 c=32 vs naive n=1 c=32


from http_load import load  # noqa: E402
from servers import free_port, process_cpu, start, stop  # noqa: E402

from service.settings import Settings  # noqa: E402

# The naive baseline: what a first version of the endpoint would look like.


def naive_app(model_path: Path):
    import numpy as np
    import tensorflow as tf
    from fastapi import FastAPI, Query
    from fastapi.responses import Response

    from service import formats

    app = FastAPI()
    loaded = tf.saved_model.load(str(model_path))
    card = json.loads((model_path / "model.json").read_text())

    @app.post("/generate")
    def create_images(n: int = Query(1, ge=1, le=1024), seed: int = Query(0, ge=0)) -> Response:
        """One model call with exactly this request's images."""
        images = loaded.sample(tf.fill([n], tf.constant(seed, tf.int64)), tf.range(n, dtype=tf.int64))["images"].numpy()
        if n == 1:
            return Response(formats.png(images), media_type="image/png")
        batch = formats.Batch(card["name"], card["version"], seed, 0, n, card["z_dim"], "float32")
        archive = formats.ZipStream(batch)
        body = archive.begin() + archive.add(np.asarray(images)) + archive.end()
        return Response(body, media_type="application/zip")

    fixed = formats.png(np.zeros((1, 64, 64), np.uint8))

    @app.post("/http-floor")
    def http_floor(n: int = Query(1, ge=1, le=1), seed: int = Query(0, ge=0)) -> Response:
        """No model at all: what FastAPI and the load client cost per request on this machine."""
        return Response(fixed, media_type="image/png")

    return app


# Bare forward throughput.


def _has_sites(model) -> bool:
    return "partition" in model.signatures and "sites" in model.signatures["partition"].structured_outputs


def forward_rate(model, batch: int, seconds: float) -> tuple[float, float]:
    """(images/s, CPU seconds per image) of back-to-back `sample` calls of `batch` images."""
    import tensorflow as tf

    seeds = tf.fill([batch], tf.constant(7, tf.int64))
    indices = tf.range(batch, dtype=tf.int64)
    model.sample(seeds, indices)["images"].numpy()  # warm-up
    calls, t0, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        model.sample(seeds, indices)["images"].numpy()
        calls += 1
    return calls * batch / (time.perf_counter() - t0), (time.process_time() - cpu0) / (calls * batch)


def scratch_store(folder: Path) -> Path:
    """A cpu-preset model trained for 2 steps and exported: untrained, but the compute of the real thing."""

    def run(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "training", *args], check=True, cwd=ROOT, capture_output=True)

    run("dataset", "--out", str(folder / "data.zip"), "--count", "256", "--seed", "1")
    run(
        "train",
        "--data",
        str(folder / "data.zip"),
        "--run-dir",
        str(folder / "run"),
        "--preset",
        "cpu",
        "--set",
        "total_steps=2",
        "--set",
        "eval_interval=0",
    )
    run("export", "--run-dir", str(folder / "run"), "--store", str(folder / "store"), "--name", "scratch")
    return folder / "store"


def pick_model(store: Path, name: str | None) -> Path:
    found = store.iterdir() if store.is_dir() else []
    models = sorted(p.name for p in found if p.is_dir() and not p.name.startswith("."))
    if name is None:
        name = "voronoi64" if "voronoi64" in models else (models[0] if len(models) == 1 else None)
    if name is None or name not in models:
        raise SystemExit(
            f"no model to benchmark in {store} (models: {models or 'none'}); pass --models-dir/--model, or --scratch"
        )
    versions = [int(p.name) for p in (store / name).iterdir() if p.name.isdigit()]
    return store / name / str(max(versions))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models_store")
    parser.add_argument("--model", help="model name (default: voronoi64, else the store's only model)")
    parser.add_argument("--scratch", action="store_true", help="benchmark a throwaway cpu-preset export")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per load cell")
    parser.add_argument("--max-requests", type=int, default=3000, help="requests per load cell at most")
    parser.add_argument("--max-batch", type=int, help="MICROGAN_MAX_BATCH (default: the service's default)")
    parser.add_argument("--max-delay-ms", type=float, default=2.0)
    parser.add_argument("--workers", type=int, help="MICROGAN_BATCH_WORKERS (default: the service's default)")
    parser.add_argument(
        "--cells", help="load cells as NxC,... (default: all of n=1,32 x c=1,8,32; targets need 32x8 and 1x32)"
    )
    parser.add_argument("--no-pad", action="store_true", help="MICROGAN_PAD_BATCHES=false (passes of any size)")
    parser.add_argument("--naive-server", type=Path, help=argparse.SUPPRESS)  # internal: serve the baseline
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.naive_server:
        import uvicorn

        uvicorn.run(naive_app(args.naive_server), host="127.0.0.1", port=args.port, log_level="warning")
        return 0

    plan = [tuple(int(x) for x in cell.split("x")) for cell in args.cells.split(",")] if args.cells else CELLS
    if not {(32, 8), (1, 32)} <= set(plan):
        parser.error("--cells must include 32x8 and 1x32 (the targets' cells)")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        store = scratch_store(work) if args.scratch else args.models_dir.resolve()
        model_path = pick_model(store, "scratch" if args.scratch else args.model)
        print(f"model {model_path} | load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

        # 1. Bare forward, before the servers exist.
        import tensorflow as tf

        model = tf.saved_model.load(str(model_path))
        measured = {batch: forward_rate(model, batch, seconds=1.0) for batch in BATCH_SIZES}
        rates = {batch: rate for batch, (rate, _) in measured.items()}
        best = max(rates, key=rates.get)
        print("bare forward images/s by batch: " + ", ".join(f"{b}: {r:.0f}" for b, r in rates.items()))
        print(
            f"bare forward best: {rates[best]:.0f} images/s at batch {best} "
            f"({1000 * measured[best][1]:.2f} ms CPU per image)"
        )
        max_batch = args.max_batch or Settings.model_fields["max_batch"].default

        # 2. The service and the naive endpoint, both up; each cell runs on one then the other, so that
        # drifting background load hits both alike. The bare forward is re-measured next to the
        # n=32 c=8 cell for the same reason.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MICROGAN_")}
        env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
        service_port, naive_port = free_port(), free_port()
        service_env = {
            **env,
            "MICROGAN_HOST": "127.0.0.1",
            "MICROGAN_PORT": str(service_port),
            "MICROGAN_MODELS_DIR": str(model_path.parents[1]),
            "MICROGAN_DEFAULT_MODEL": model_path.parent.name,
            "MICROGAN_MAX_BATCH": str(max_batch),
            "MICROGAN_MAX_DELAY_MS": str(args.max_delay_ms),
            "MICROGAN_PAD_BATCHES": str(not args.no_pad).lower(),
            "MICROGAN_BATCH_WORKERS": str(args.workers or Settings.model_fields["batch_workers"].default),
            "MICROGAN_RELOAD_INTERVAL": "0",
            "MICROGAN_LOG_LEVEL": "warning",
            "MICROGAN_QUEUE_LIMIT": "8192",
        }
        naive_argv = [str(Path(__file__).resolve()), "--naive-server", str(model_path), "--port", str(naive_port)]
        results: dict[str, list[dict]] = {"service": [], "naive": []}
        nearby_bare: list[float] = []
        service = start(["-m", "service"], service_env, service_port, work / "service.log", b"HTTP/1.1 200")
        try:
            # The naive app loads its model before it listens, so any answer (a 404) means ready.
            naive = start(naive_argv, env, naive_port, work / "naive.log", b"HTTP/1.1")
            try:
                for n, c in plan:
                    if (n, c) == (32, 8):
                        nearby_bare.append(forward_rate(model, best, seconds=2.0))
                    for label, process, port in (("service", service, service_port), ("naive", naive, naive_port)):
                        cpu0 = process_cpu(process.pid)
                        result = asyncio.run(load(port, n, c, args.duration, args.max_requests))
                        result["cpu_ms"] = 1000 * (process_cpu(process.pid) - cpu0) / max(result["images"], 1)
                        results[label].append(result)
                    if (n, c) == (32, 8):
                        nearby_bare.append(forward_rate(model, best, seconds=2.0))
                http_floor = asyncio.run(load(naive_port, 1, 32, args.duration, args.max_requests, "/http-floor"))
                # Tessellation models: geometry rows (the service only; the naive endpoint has no geometry).
                if _has_sites(model):
                    for n, c, query in GEOMETRY_CELLS:
                        result = asyncio.run(load(service_port, n, c, args.duration, args.max_requests, query=query))
                        results.setdefault("geometry", []).append({**result, "query": query, "cpu_ms": float("nan")})
            finally:
                stop(naive)
        finally:
            stop(service)
        bare_best = statistics.mean(rate for rate, _ in nearby_bare)
        bare_cpu = statistics.mean(cpu for _, cpu in nearby_bare)
        print(
            f"bare forward at batch {best}, measured around the n=32 c=8 cell: {bare_best:.0f} images/s "
            f"({1000 * bare_cpu:.2f} ms CPU per image)"
        )

    # 3. Report.
    print(
        f"\n{'server':8} {'n':>3} {'c':>3} {'requests':>8} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU ms/img':>10}  errors"
    )
    for label, cells in results.items():
        for r in cells:
            print(
                f"{label:8} {r['n']:>3} {r['c']:>3} {r['requests']:>8} {r['images_per_s']:>9.0f} "
                f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['cpu_ms']:>10.2f}  {r['errors'] or 0}"
                f"  {r.get('query', '')}"
            )
    if _has_sites(model):
        from geometry_cost import measure  # bench/geometry_cost.py, beside this script

        measure(model_path)
    cell = {(label, r["n"], r["c"]): r for label, cells in results.items() for r in cells}
    share = cell[("service", 32, 8)]["images_per_s"] / bare_best
    ratio = cell[("service", 1, 32)]["images_per_s"] / cell[("naive", 1, 32)]["images_per_s"]
    errors = sum(sum(r["errors"].values()) for cells in results.values() for r in cells)  # geometry rows too
    # When the CPU is the limit, the service can at best run the bare forward at its best batch size,
    # and a naive endpoint that achieves the bare batch-1 rate is as fast as it can be: their quotient
    # is what batching can gain on this machine at most (HTTP overheads aside).
    print(f"most batching can gain here: bare best / bare batch 1 = {rates[best] / rates[1]:.2f}x")
    # n=1 at c=32 needs a forward share and an HTTP request per image, both from the same CPUs: even
    # with perfect batching and nothing else to do, the service cannot beat 1 / (1/forward + 1/HTTP).
    http_rate = http_floor["images_per_s"]
    ceiling = 1 / (1 / bare_best + 1 / http_rate)
    print(
        f"HTTP alone (FastAPI returning a fixed PNG to this client, c=32): {http_rate:.0f} requests/s; "
        f"n=1 ceiling here 1/(1/{bare_best:.0f} + 1/{http_rate:.0f}) = {ceiling:.0f} images/s "
        f"= {ceiling / cell[('naive', 1, 32)]['images_per_s']:.2f}x naive"
    )
    # CPU per image is what a saturated machine is short of; unlike images/s, it hardly depends on how
    # much of the CPU other processes take, so it shows the service's overhead when the machine is shared.
    service_cpu = cell[("service", 32, 8)]["cpu_ms"] / 1000
    print(
        f"service n=32 c=8 CPU per image vs bare forward: {1000 * service_cpu:.2f} vs {1000 * bare_cpu:.2f} ms "
        f"(efficiency {bare_cpu / service_cpu:.2f}; informative, not a target)"
    )
    pad = "unpadded" if args.no_pad else "padded"
    checks = [
        (
            f"service n=32 c=8 / bare forward (batch {best}; service max_batch {max_batch}, {pad}) = {share:.2f}",
            share >= TARGET_FORWARD_SHARE,
            f">= {TARGET_FORWARD_SHARE}",
        ),
        (f"service n=1 c=32 / naive n=1 c=32 = {ratio:.2f}x", ratio >= TARGET_NAIVE_RATIO, f">= {TARGET_NAIVE_RATIO}x"),
        (f"errors = {errors}", errors == 0, "0"),
    ]
    print()
    for text, ok, target in checks:
        print(f"{'PASS' if ok else 'MISS'}  {text}  (target {target})")
    print(f"total {time.perf_counter() - began:.0f} s")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
