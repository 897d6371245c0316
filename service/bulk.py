"""Bulk generation: a large image set of one seed, written as shards, resumable, without HTTP.

    python -m service.bulk --model voronoi64 --seed 7 --count 1000000 --shard-size 10000 --out sets/s7
    python -m service.bulk ... --format npy                      # or zip (PNGs + manifest.json per shard)
    python -m service.bulk ... --labels --sites                  # h5: + grain labels, + laguerre sites/weights
    python -m service.bulk ... --shard-index $JOB_COMPLETION_INDEX   # one shard (a Kubernetes Indexed Job pod)
    python -m service.bulk ... --shards 0:10                     # shards 0..9
    python -m service.bulk ... --grains 10                       # a model conditioned on grains: 10 per image

Models come from MICROGAN_MODELS_DIR as for the service (default version: the newest), and the
forward pass is the service's: the model's `sample` signature (each image's latent is drawn inside it
from (seed, index)) in passes of MICROGAN_MAX_BATCH rows (`--batch`), padded as the service pads. So
image i of the set is byte-identical to image i of `POST /generate?seed=...`, and shard k's file is
the body of `POST /generate?seed=...&start=k*shard_size&n=shard_size&format=h5` (or npy, zip; from a
service whose MICROGAN_MAX_N allows shard_size).
A re-run skips the shards whose checksum verifies and redoes the others (service.shards).
Bad arguments exit 2 with one line naming the problem, before any file is written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

import numpy as np  # noqa: E402

from service import formats, shards  # noqa: E402
from service.shards import SetSpec  # noqa: E402

MAX_INT64 = 2**63 - 1


class UsageError(ValueError):
    """A bad argument: reported as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.bulk", description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model name (default: MICROGAN_DEFAULT_MODEL)")
    parser.add_argument("--version", type=int, help="model version (default: the newest in the store)")
    parser.add_argument("--seed", type=int, required=True, help="0..2^63-1: the set's seed, as POST /generate's")
    parser.add_argument("--count", type=int, required=True, help="images in the whole set")
    parser.add_argument("--shard-size", type=int, default=10000, help="images per shard file (default 10000)")
    parser.add_argument("--out", required=True, help="directory of the shards and manifest.json")
    parser.add_argument("--format", choices=("h5", "npy", "zip"), default="h5", help="shard format (default h5)")
    parser.add_argument("--labels", action="store_true", help="h5: grain labels, as POST /generate?labels=true")
    parser.add_argument("--sites", action="store_true", help="h5, laguerre models: sites and weights of each image")
    parser.add_argument("--grains", type=int, help="models conditioned on grains: grains per image, as grains=")
    parser.add_argument("--batch", type=int, help="images per forward pass (default: MICROGAN_MAX_BATCH, as served)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--shard-index", type=int, metavar="I", help="write shard I only (0-based)")
    which.add_argument("--shards", metavar="A:B", help="write shards A..B-1 only")
    return parser


def _selected(args, total: int) -> range:
    """The shards this process writes."""
    if args.shard_index is not None:
        if not 0 <= args.shard_index < total:
            raise UsageError(f"--shard-index {args.shard_index} is outside 0..{total - 1} ({total} shards)")
        return range(args.shard_index, args.shard_index + 1)
    if args.shards is not None:
        first, colon, last = args.shards.partition(":")
        try:
            a, b = int(first), int(last)
        except ValueError:
            raise UsageError(f"--shards must be A:B (two integers), got {args.shards!r}") from None
        if not colon or not 0 <= a < b <= total:
            raise UsageError(f"--shards {args.shards}: need 0 <= A < B <= {total} ({total} shards)")
        return range(a, b)
    return range(total)


def _check_arguments(args) -> None:
    if not 0 <= args.seed <= MAX_INT64:
        raise UsageError(f"--seed must be 0..{MAX_INT64}, got {args.seed}")
    if not 1 <= args.count <= MAX_INT64:
        raise UsageError(f"--count must be at least 1, got {args.count}")
    if args.shard_size < 1:
        raise UsageError(f"--shard-size must be at least 1, got {args.shard_size}")
    if (args.labels or args.sites) and args.format != "h5":
        raise UsageError(f"--labels and --sites need --format h5 (got --format {args.format})")
    if args.batch is not None and args.batch < 1:
        raise UsageError(f"--batch must be at least 1, got {args.batch}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")


def _version_dir(models_dir: Path, model: str, version: int | None) -> Path:
    """models_dir/model/version, the newest integer version when none is given; UsageError if absent."""
    folder = models_dir / model
    versions = sorted(int(p.name) for p in folder.glob("*") if p.name.isdigit() and (p / "saved_model.pb").exists())
    if not versions:
        known = sorted(p.name for p in models_dir.glob("*") if p.is_dir() and not p.name.startswith("."))
        raise UsageError(f"no model {model!r} in {models_dir} (MICROGAN_MODELS_DIR); models there: {known or 'none'}")
    if version is None:
        return folder / str(versions[-1])
    if version not in versions:
        raise UsageError(f"model {model!r} has no version {version} in {models_dir} (versions: {versions})")
    return folder / str(version)


def load(settings, model: str, version: int | None, batch: int):
    """The service's Generator for a version of a model, configured as the service configures it."""
    from service.generator import Generator, configure_tensorflow

    path = _version_dir(Path(settings.models_dir), model, version)
    try:
        return Generator(path, configure_tensorflow(settings.precision), batch)
    except ValueError as error:  # a --batch above the model's max_sample_batch, a broken contract
        raise UsageError(f"{path}: {error}") from None


def images_of(generator, seed: int, first: int, n: int, block: int) -> np.ndarray:
    """uint8 (n, 64, 64): images first..first+n-1 of a seed, in passes of `block` rows padded as served."""
    out = np.empty((n, 64, 64), np.uint8)
    for offset in range(0, n, block):
        rows = min(block, n - offset)
        seeds, indices = np.zeros(block, np.int64), np.zeros(block, np.int64)  # padding: (seed 0, index 0)
        seeds[:rows] = seed
        indices[:rows] = np.arange(first + offset, first + offset + rows)
        out[offset : offset + rows] = generator(seeds, indices)[:rows]
    return out


def encode(generator, spec: SetSpec, first: int, images: np.ndarray) -> bytes:
    """A shard's bytes, encoded as POST /generate encodes the same images."""
    batch = formats.Batch(
        spec.model, spec.version, spec.seed, first, len(images), spec.z_dim, spec.precision, spec.grains
    )
    if spec.format == "npy":
        return formats.npy_header(len(images)) + images.tobytes()
    if spec.format == "zip":
        archive = formats.ZipStream(batch)
        return archive.begin() + archive.add(images) + archive.end()
    labels, source, extra = None, None, {}
    if spec.labels or spec.sites:
        from microstructure.stats import grain_ids, segment

        if generator.has_partition:
            indices = np.arange(first, first + len(images), dtype=np.int64)
            partition = generator.partition(np.full(len(images), spec.seed, np.int64), indices)
            labels, source = grain_ids(partition["labels"]), "partition"
            if spec.sites:
                extra = {"sites": partition["sites"], "weights": partition["weights"]}
        else:
            labels, source = segment(images), "segmentation"
    return formats.h5(batch, images, labels if spec.labels else None, source, extra)


def generate(generator, spec: SetSpec, out: Path, todo: range, block: int) -> dict:
    """Write the shards of `todo` that do not verify (computing the next shard while one is written)."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    pending = [index for index in todo if not shards.verified(out, spec.file_name(index))]
    skipped = len(todo) - len(pending)
    if skipped:
        _say(f"{skipped} of {len(todo)} shards already written and verified: skipped")
    total = sum(spec.span(index)[1] for index in pending)
    bar = tqdm(total=total, unit="img", desc="bulk", file=sys.stderr, disable=not sys.stderr.isatty())
    started, done = time.perf_counter(), 0

    def save(index: int, first: int, images: np.ndarray) -> None:
        shards.save_shard(out, spec.file_name(index), encode(generator, spec, first, images))
        shards.write_manifest(out, spec)

    with ThreadPoolExecutor(1, thread_name_prefix="microgan-bulk-writer") as writer:
        writing: Future | None = None
        for number, index in enumerate(pending, 1):
            first, n = spec.span(index)
            images = images_of(generator, spec.seed, first, n, block)
            if writing is not None:
                writing.result()  # at most one shard waits to be written: memory stays at two shards
            writing = writer.submit(save, index, first, images)
            done += n
            bar.update(n)
            rate = done / (time.perf_counter() - started)
            if bar.disable:  # logs (a Kubernetes pod): one line per shard instead of a bar
                eta = (total - done) / rate
                counts = f"{done}/{total} images, {rate:.0f} images/s, ETA {eta:.0f} s"
                _say(f"shard {index} ({number}/{len(pending)}): {counts}")
        if writing is not None:
            writing.result()
    bar.close()
    manifest = shards.write_manifest(out, spec)
    return {"written": len(pending), "skipped": skipped, "images": total, "manifest": manifest}


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from service.settings import Settings

    args = _parser().parse_args(argv)
    _check_arguments(args)
    try:
        settings = Settings()
    except ValidationError as error:
        raise UsageError(f"settings: {error.errors()[0]['loc']}: {error.errors()[0]['msg']}") from None
    model = args.model or settings.default_model
    block = args.batch or settings.max_batch
    _version_dir(Path(settings.models_dir), model, args.version)  # before TensorFlow's start-up cost
    probe = SetSpec(model, 0, "", args.seed, args.count, args.shard_size, args.format, 0)
    todo = _selected(args, probe.shards)

    generator = load(settings, model, args.version, block)
    if args.sites and generator.head != "laguerre":
        raise UsageError(f"--sites needs a laguerre model; {model} v{generator.version} has a {generator.head} head")
    if args.grains is not None:
        from service.conditions import with_grains
        from service.errors import ConditionError

        try:
            generator = with_grains(generator, args.grains)  # draws as POST /generate?grains= does
        except ConditionError as error:
            raise UsageError(f"--grains: {error}") from None
    spec = SetSpec(
        model, generator.version, generator.precision, args.seed, args.count, args.shard_size, args.format,
        generator.z_dim, args.labels, args.sites, args.grains,
    )  # fmt: skip
    out = Path(args.out)
    try:
        shards.check_manifest(out, spec)
    except shards.SetMismatch as error:
        raise UsageError(str(error)) from None

    result = generate(generator, spec, out, todo, block)
    manifest = result["manifest"]
    state = "complete" if manifest["complete"] else f"{len(manifest['shards'])} of {spec.shards} shards so far"
    print(
        f"{model} v{spec.version} ({spec.precision}) seed {spec.seed}: wrote {result['written']} shards "
        f"({result['images']} images), {result['skipped']} verified and kept; {out / shards.MANIFEST}: {state}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # unwritable --out, full disk: name the path, no traceback
        print(f"error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
