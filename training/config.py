"""The training config: one dataclass, presets, and the one validation that names a bad key.

    >>> from training.config import resolve
    >>> cfg = resolve("tiny", overrides=["epochs=3", "batch_size=8"])
    >>> cfg.epochs, cfg.batch_size, cfg.g_head
    (3, 8, 'laguerre')

Presets (training/presets.py): `cpu` (the default), `pixel`, `reference` and `tiny`. Research options, which no shipped
recipe uses and which stay for measured comparisons (README "Training"): g_head=partition,
g_count=free, g_top, g_convs, d_pack and n_critic above 1.

`--set key=value` keys are exactly the field names below. Values are parsed as JSON where they can be
(so `g_filters=[64,32,16]`, `precision=float32` and `cosine_decay=false` all work).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.conditions import CONDITIONS
from training.errors import UserError
from training.presets import PRESETS


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    # Architecture (fixed for a run; a resume may not change these).
    preset: str = "cpu"  # the preset these values started from
    # What the generator draws: image = pixels (the original conv generator, tanh); laguerre = a
    # Laguerre tessellation of g_sites sites placed by an MLP; partition = the conv generator ending
    # in g_sites label logits per pixel. Both partition heads draw boundaries with the dataset's rule.
    g_head: str = "image"
    g_sites: int = 16  # most grains a partition head can draw (sites, or label channels)
    g_hidden: int = 256  # width of the laguerre head's two hidden layers
    # How many sites a laguerre image uses: free = all g_sites may own a grain (the MLP decides, through
    # positions and weights); uniform = a count drawn from z's first component, uniform over a learnt
    # range, removes the other sites (training.heads.CountGate).
    g_count: str = "free"
    # What a caller may ask for: none; grains = the number of grains per image (a conditional WGAN-GP:
    # the generator reads the count beside z, the critic judges (image, count) pairs by projection; a
    # laguerre head draws exactly that many sites, all inside the image, and ignores g_count).
    condition: str = "none"
    # The laguerre head's site weights: learnt (a Laguerre tessellation) or equal (all zero: a Voronoi
    # tessellation, where every site owns the grain around it, so no present site can vanish).
    g_weights: str = "learnt"
    render_width: int = 2  # boundary width the partition heads draw, px (as `dataset --width`)
    z_noise_dim: int = 100  # latent size
    g_base: int = 128  # channels of the generator's 4x4 dense map
    g_filters: tuple[int, int, int] = (128, 64, 32)  # generator conv widths at 8, 16, 32 px
    # A conv of this width at 64 px before the output conv; 0 = the original arrangement, where the
    # output conv follows the last upsampling directly (the image is then linear in 32 px features).
    g_top: int = 0
    # 3x3 convs in each of the 8, 16 and 32 px blocks (1 = the original; 2 adds depth where the
    # geometry is decided: with the cpu widths about 40% more generator arithmetic, 15% more time per
    # training step by bench/variants.py).
    g_convs: int = 1
    d_filters: tuple[int, int, int, int] = (32, 64, 128, 256)  # critic conv widths at 32, 16, 8, 4 px
    d_kernel: int = 4  # critic kernel size, px
    d_pack: int = 1  # images the critic judges at once (PacGAN); 1 = one at a time, as the original
    # Optimisation.
    epochs: int = 30  # passes over the data (ignored when total_steps > 0)
    total_steps: int = 0  # generator steps for the whole run; 0 = epochs * steps per epoch
    batch_size: int = 64  # global batch, images
    g_learning_rate: float = 1e-4  # Adam, generator (TTUR)
    d_learning_rate: float = 4e-4  # Adam, critic (TTUR)
    beta_1: float = 0.5  # Adam beta_1, both networks
    beta_2: float = 0.9  # Adam beta_2, both networks
    cosine_decay: bool = True  # decay both learning rates to 0 over the run
    n_critic: int = 1  # critic steps per generator step
    gp_weight: float = 10.0  # gradient penalty weight (lambda)
    # Frames, evaluation and export use an exponential moving average of the generator's weights
    # (horizon about 1 / (1 - ema_decay) steps); 0 = the raw weights.
    ema_decay: float = 0.999
    precision: str = "auto"  # auto | float32 | mixed_float16 (auto: mixed_float16 when a GPU is visible)
    seed: int = 0  # seeds initial weights, data order, noise and the preview grid
    deterministic: bool = False  # ask TensorFlow for deterministic ops (slower; bit-exact resumes)
    threads: int = 0  # CPU threads for TensorFlow ops; 0 = all (env MICROGAN_TRAIN_THREADS)
    # Observation, in generator steps.
    log_interval: int = 50  # progress.jsonl, losses.csv and TensorBoard
    frame_interval: int = 250  # preview frame (also at each epoch end)
    checkpoint_interval: int = 250  # checkpoint (also on SIGINT/SIGTERM and at the end)
    eval_interval: int = 1000  # fidelity evaluation; 0 = never
    eval_samples: int = 256  # images per side in an in-training evaluation
    keep_checkpoints: int = 3  # latest checkpoints kept (the best one is kept apart)


ARCHITECTURE_KEYS = (
    "g_head",
    "g_sites",
    "g_hidden",
    "g_count",
    "condition",
    "g_weights",
    "render_width",
    "z_noise_dim",
    "g_base",
    "g_filters",
    "g_top",
    "g_convs",
    "d_filters",
    "d_kernel",
    "d_pack",
)

HEADS = ("image", "laguerre", "partition")
MAX_RENDER_WIDTH = 16  # px: a quarter of the 64 px image, as `dataset --width` allows
_CHOICES = {
    "precision": ("auto", "float32", "mixed_float16"),
    "preset": tuple(PRESETS),
    "g_head": HEADS,
    "g_count": ("free", "uniform"),
    "condition": CONDITIONS,
    "g_weights": ("learnt", "equal"),
}
MAX_WIDTH = 1024  # channels or units of any layer: twice the reference preset's widest
MAX_STEPS = 10_000_000  # generator steps (or any interval counted in them): years on this machine
# Every integer key's allowed range, inclusive: what the trainer accepts is what a job may ask for.
RANGES: dict[str, tuple[int, int]] = {
    "g_sites": (1, 256),
    "g_hidden": (1, MAX_WIDTH),
    "render_width": (1, MAX_RENDER_WIDTH),
    "z_noise_dim": (1, MAX_WIDTH),
    "g_base": (1, MAX_WIDTH),
    "g_top": (0, MAX_WIDTH),
    "g_convs": (1, 8),
    "d_kernel": (1, 16),
    "d_pack": (1, 16),
    "epochs": (1, 100_000),
    "total_steps": (0, MAX_STEPS),
    "batch_size": (1, 4096),
    "n_critic": (1, 100),
    "seed": (0, 2**63 - 1),
    "threads": (0, 1024),
    "log_interval": (1, MAX_STEPS),
    "frame_interval": (1, MAX_STEPS),
    "checkpoint_interval": (1, MAX_STEPS),
    "eval_interval": (0, MAX_STEPS),
    "eval_samples": (1, 10_000),
    "keep_checkpoints": (1, 1000),
}
MAX_GP_WEIGHT = 1e6


def _coerce(key: str, value: Any, default: Any) -> Any:
    kind = type(default)
    expected = {
        tuple: f"a list of {len(default) if kind is tuple else 0} integers",
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
    }[kind]
    try:
        if kind is tuple and isinstance(value, (list, tuple)) and len(value) == len(default):
            return tuple(_integer(v) for v in value)
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int:
            return _integer(value)
        if kind is float and not isinstance(value, (bool, str)):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
    except (TypeError, ValueError):
        pass
    raise UserError(f"config key {key!r}: bad value {value!r} (expected {expected})")


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise ValueError(value)
    return int(value)


def parse_set(items: list[str]) -> dict[str, Any]:
    """Parse `key=value` strings; values are JSON where they parse, strings otherwise."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def validate(cfg: TrainConfig) -> TrainConfig:
    for key, (low, high) in RANGES.items():
        if not low <= getattr(cfg, key) <= high:
            raise UserError(f"config key {key!r}: must be {low}..{high}, got {getattr(cfg, key)}")
    if not 0 <= cfg.gp_weight <= MAX_GP_WEIGHT:  # NaN fails too
        raise UserError(f"config key 'gp_weight': must be 0..{MAX_GP_WEIGHT:g}, got {cfg.gp_weight}")
    for key, choices in _CHOICES.items():
        if getattr(cfg, key) not in choices:
            raise UserError(f"config key {key!r}: must be one of {', '.join(choices)}, got {getattr(cfg, key)!r}")
    for key in ("g_learning_rate", "d_learning_rate"):
        if not 0 < getattr(cfg, key) < 1:
            raise UserError(f"config key {key!r}: must be in (0, 1), got {getattr(cfg, key)}")
    for key in ("beta_1", "beta_2", "ema_decay"):
        if not 0 <= getattr(cfg, key) < 1:
            raise UserError(f"config key {key!r}: must be in [0, 1), got {getattr(cfg, key)}")
    if not 1 <= cfg.render_width <= MAX_RENDER_WIDTH:
        raise UserError(f"config key 'render_width': must be 1..{MAX_RENDER_WIDTH} px, got {cfg.render_width}")
    if cfg.g_head != "image" and cfg.g_sites < 2:
        raise UserError(f"config key 'g_sites': a partition needs at least 2 grains, got {cfg.g_sites}")
    if cfg.condition != "none" and cfg.d_pack != 1:
        raise UserError("config key 'd_pack': a conditional critic judges one image at a time (d_pack=1)")
    if cfg.batch_size % cfg.d_pack:
        raise UserError(f"config key 'd_pack': batch_size {cfg.batch_size} is not a multiple of {cfg.d_pack}")
    for key in ("g_filters", "d_filters"):
        if not all(1 <= width <= MAX_WIDTH for width in getattr(cfg, key)):
            raise UserError(f"config key {key!r}: widths must be 1..{MAX_WIDTH}, got {list(getattr(cfg, key))}")
    return cfg


def check_data(cfg: TrainConfig, count: int) -> None:
    """UserError when a dataset of `count` images cannot feed one step of this config."""
    per_step = cfg.batch_size * cfg.n_critic
    if count < per_step:
        raise UserError(
            f"config key 'batch_size': the dataset has {count} images, fewer than batch_size * n_critic = "
            f"{per_step} (batch_size must be 1..{count // cfg.n_critic} for this dataset)"
        )


def user_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides from a user (--set, --config, a job's config): everything but the preset's name."""
    if "preset" in overrides:
        raise UserError(
            "config key 'preset': choose the preset with --preset (or a job's \"preset\"); "
            "a config cannot relabel a run"
        )
    return overrides


def apply(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    changes = {}
    for key, value in overrides.items():
        if key not in fields:
            raise UserError(f"unknown config key {key!r} (known: {', '.join(fields)})")
        changes[key] = _coerce(key, value, getattr(cfg, key))
    return dataclasses.replace(cfg, **changes)


def resolve(
    preset: str | None = None, config_file: str | Path | None = None, overrides: Sequence[str] = ()
) -> TrainConfig:
    """Preset, then the JSON config file, then `--set` overrides; validated."""
    preset = preset or "cpu"
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    cfg = apply(TrainConfig(), {"preset": preset, **PRESETS[preset]})
    if config_file:
        cfg = apply(cfg, user_overrides(load_json(config_file)))
    return validate(apply(cfg, user_overrides(parse_set(list(overrides)))))


def load_json(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object of config keys")
    return data


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def from_dict(data: dict[str, Any]) -> TrainConfig:
    return validate(apply(TrainConfig(), data))
