"""A run's config on start and on resume, and what a resume must keep: architecture, preset and data.

saved = saved_meta(run_dir)                       # config.json of an existing run, or None
cfg = resolve_run_config(args, checkpoint_config)  # fresh: preset, file, --set; resume: checkpoint's
check_same_data(data_path, data, started_on)      # UserError naming both fingerprints
"""

from __future__ import annotations

import json
from pathlib import Path

from training.config import (
    ARCHITECTURE_KEYS,
    TrainConfig,
    apply,
    from_dict,
    load_json,
    parse_set,
    resolve,
    user_overrides,
    validate,
)
from training.errors import UserError


def resolve_run_config(args, saved: dict | None) -> TrainConfig:
    if saved is None:
        return resolve(args.preset, args.config, args.set)
    cfg = from_dict(saved)
    overrides = user_overrides({**(load_json(args.config) if args.config else {}), **parse_set(args.set)})
    if args.preset and args.preset != cfg.preset:
        raise UserError(f"config key 'preset': the run was started as {cfg.preset!r}; a resume cannot change it")
    updated = validate(apply(cfg, overrides))
    for key in ARCHITECTURE_KEYS:
        if getattr(updated, key) != getattr(cfg, key):
            raise UserError(
                f"config key {key!r}: the checkpoint was built with {getattr(cfg, key)!r}; "
                "a resume cannot change the architecture (start a new run directory)"
            )
    return updated


def saved_meta(run_dir: Path) -> dict | None:
    path = run_dir / "config.json"
    return json.loads(path.read_text()) if path.exists() else None


def check_same_data(data_path: str, fingerprint: str, started_on: str | None) -> None:
    """A resumed run must train on the data it started on."""
    if started_on and started_on != fingerprint:
        raise UserError(
            f"{data_path}: dataset fingerprint {fingerprint} differs from the one the run started on "
            f"({started_on}); resume without --data (the run's own data and load options) or with the same "
            "data and options, or start a new run directory"
        )
