"""Command line of the training side.

    python -m training dataset --out data/voronoi.zip --count 20000 --seed 1
    python -m training inspect data/voronoi.zip
    python -m training train --data data/voronoi.zip --run-dir runs/cpu --preset cpu
    python -m training rank --run-dir runs/cpu --data data/voronoi-test.zip --n 1000
    python -m training gif runs/cpu
    TF_CONFIG=$(python -m training tf-config --workers 2 --job microgan-train --service microgan-train) \
        python -m training train ...                        # one worker of a multi-worker job

Bad input exits with status 2 and one line naming what is wrong.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

from training.errors import UserError


def _add_load_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", help="H5 dataset name (default: the first dataset in each file)")
    parser.add_argument("--tile", action="store_true", help="cut images larger than 64x64 into 64x64 tiles")
    parser.add_argument("--stride", type=int, default=64, help="tile stride in px (default 64)")
    parser.add_argument("--invert", action="store_true", help="the data's boundaries are dark")
    parser.add_argument(
        "--max-bytes", type=int, default=4 * 1024**3, help="refuse sources larger than this uncompressed"
    )
    parser.add_argument(
        "--max-images", type=int, default=1_000_000, help="refuse sources of more 64x64 images (after tiling)"
    )


def _load_options(args):
    from training.loading import LoadOptions

    if args.stride < 1:
        raise UserError(f"--stride must be at least 1 px, got {args.stride}")
    if args.max_bytes < 1 or args.max_images < 1:
        raise UserError("--max-bytes and --max-images must be at least 1")
    return LoadOptions(args.key, args.tile, args.stride, args.invert, args.max_bytes, args.max_images)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("dataset", help="write a synthetic Voronoi dataset")
    p.add_argument("--out", required=True, help="output path (.zip, or .h5 with --format h5)")
    p.add_argument("--count", type=int, default=20000, help="number of images (default 20000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--format", choices=["zip", "h5"], default="zip", help="zip of H5 files, or one labelled H5")
    p.add_argument(
        "--per-file", type=int, default=100, help="images per H5 file inside the zip (default 100; zip only)"
    )
    p.add_argument("--grains", type=int, nargs=2, default=[5, 12], metavar=("MIN", "MAX"))
    p.add_argument("--width", type=int, default=2, help="boundary width in px (default 2)")
    p.add_argument("--size", type=int, default=64, help="image side in px (default 64)")
    p.add_argument("--periodic", action="store_true", help="tessellate the torus so images tile")

    p = commands.add_parser("inspect", help="check a dataset and write a preview grid")
    p.add_argument("path")
    p.add_argument("--preview", help="preview PNG path (default: PATH's name + .preview.png in the cwd)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_load_options(p)

    p = commands.add_parser("train", help="train (or resume) a WGAN-GP run")
    p.add_argument("--data", help="dataset path (zip, folder, H5 or image)")
    p.add_argument("--run-dir", required=True, help="run directory; the same command resumes it")
    p.add_argument("--preset", help="architecture preset: reference, cpu (default), tiny")
    p.add_argument("--config", help="JSON file of config overrides")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument(
        "--images", type=int, help="with --dry-run: also check the config against a dataset of this many images"
    )
    _add_load_options(p)

    p = commands.add_parser("export", help="export a run's generator as a SavedModel version")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--store", default="models_store", help="models store root (default models_store)")
    p.add_argument("--name", required=True, help="model name, e.g. voronoi64")
    p.add_argument("--checkpoint", default="best", help="best (default), latest or a step number")
    p.add_argument("--data", help="real data to evaluate the export against (fidelity on the card)")
    p.add_argument("--n", type=int, default=512, help="images per side for --data (default 512)")
    p.add_argument(
        "--train-data",
        help="with --data: the training images, so the card also checks memorisation (as evaluate does)",
    )
    p.add_argument(
        "--weights",
        choices=("ema", "raw"),
        default="ema",
        help="the generator's moving average (default, when the run keeps one) or its raw weights",
    )

    p = commands.add_parser("evaluate", help="compare a model's samples with real data")
    p.add_argument("--model", required=True, help="an exported version directory, e.g. models_store/voronoi64/1")
    p.add_argument("--data", required=True, help="real images (held out from training)")
    p.add_argument("--train-data", help="the training images, to check memorisation")
    p.add_argument("--n", type=int, default=2000, help="images per side (default 2000)")
    p.add_argument("--out", help="write the full report as JSON")
    p.add_argument("--figure", help="write S2 curves, grain-area histograms and sample grids as PNG")

    p = commands.add_parser("rank", help="rank a run's checkpoints by fidelity, to choose the one to export")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--data", required=True, help="real images held out from training")
    p.add_argument("--n", type=int, default=1000, help="images per side (default 1000)")
    p.add_argument(
        "--weights", choices=("raw", "ema", "both"), default="both", help="which generator weights (default both)"
    )
    p.add_argument("--steps", help="only these steps, comma-separated (default: every kept checkpoint)")
    p.add_argument("--out", help="write the rows as JSON")

    p = commands.add_parser("tf-config", help="print the TF_CONFIG of one worker of a multi-worker training job")
    p.add_argument("--workers", type=int, required=True, help="number of workers (the Indexed Job's completions)")
    p.add_argument("--job", help="Kubernetes Indexed Job name: hosts are <job>-<index>.<service>")
    p.add_argument("--service", help="the headless Service the job's pods name as their subdomain")
    p.add_argument("--hosts", help="instead of --job/--service: comma-separated host:port of every worker")
    p.add_argument("--port", type=int, default=2222, help="with --job: the workers' port (default 2222)")
    p.add_argument("--index", help="this worker's index (default: $JOB_COMPLETION_INDEX)")

    p = commands.add_parser("gif", help="assemble a run's frames into training.gif")
    p.add_argument("run_dir")
    p.add_argument("--fps", type=float, default=8.0)
    return parser


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not sys.stderr.isatty())


def cmd_dataset(args) -> int:
    from pathlib import Path

    from training.synthetic import write_h5, write_zip
    from training.voronoi import VoronoiSpec

    spec = VoronoiSpec(args.size, args.grains[0], args.grains[1], args.width, args.periodic)
    try:
        spec.validate()
    except ValueError as error:
        raise UserError(str(error)) from None
    if args.count < 1 or args.per_file < 1:
        raise UserError("--count and --per-file must be at least 1")
    if args.seed < 0:
        raise UserError(f"--seed must not be negative, got {args.seed}")
    out = Path(args.out)
    with _progress(args.count, "dataset") as bar:
        if args.format == "zip":
            write_zip(out, spec, args.count, args.seed, args.per_file, progress=bar.update)
        else:
            write_h5(out, spec, args.count, args.seed, progress=bar.update)
    print(f"wrote {args.count} images to {out}")
    return 0


def cmd_inspect(args) -> int:
    import json
    from pathlib import Path

    from PIL import Image

    from microstructure.images import grid, to_uint8
    from training.loading import SIZE, scan

    data = scan(args.path, _load_options(args))  # bounded memory, whatever the file holds
    preview = Path(args.preview or f"{Path(args.path).name}.preview.png")
    Image.fromarray(grid(to_uint8(data.preview), columns=4)).save(preview)
    summary = {
        "path": str(args.path),
        "count": data.count,
        "shape": [SIZE, SIZE, 1],
        "dtype": data.source_dtype,
        "range": list(data.source_range),
        "mapping": data.mapping,
        "files": data.files,
        "fingerprint": data.fingerprint,
        "preview": str(preview),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:12s} {value}")
    return 0


def cmd_train(args) -> int:
    from training.train import run_from_cli

    return run_from_cli(args, _load_options(args))


def cmd_export(args) -> int:
    from pathlib import Path

    from training.export import export

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    if args.train_data and not args.data:
        raise UserError("--train-data needs --data (the held-out images the export is evaluated against)")
    export(run_dir, Path(args.store), args.name, args.checkpoint, args.data, args.n, args.weights, args.train_data)
    return 0


def cmd_evaluate(args) -> int:
    from training.evaluate import run_from_cli

    return run_from_cli(args)


def cmd_rank(args) -> int:
    from training.rank import run_from_cli

    return run_from_cli(args)


def cmd_tf_config(args) -> int:
    from training.cluster import completion_index, indexed_job_hosts, tf_config

    if args.hosts:
        hosts = [host.strip() for host in args.hosts.split(",") if host.strip()]
        if len(hosts) != args.workers:
            raise UserError(f"--hosts lists {len(hosts)} workers but --workers is {args.workers}")
    elif args.job and args.service:
        hosts = indexed_job_hosts(args.job, args.service, args.workers, args.port)
    else:
        raise UserError("give --job and --service (a Kubernetes Indexed Job), or --hosts")
    print(tf_config(hosts, completion_index(args.index)))
    return 0


def cmd_gif(args) -> int:
    from pathlib import Path

    from training.monitor import write_gif

    path = write_gif(Path(args.run_dir), fps=args.fps)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = globals()[f"cmd_{args.command.replace('-', '_')}"]
    try:
        return handler(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # unwritable output, full disk: name the path, no traceback
        print(f"error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
