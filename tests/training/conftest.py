"""Fixtures of the data tests: one small synthetic zip written by the CLI, built once."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="session")
def voronoi_zip(tmp_path_factory) -> SimpleNamespace:
    """A zip written by `python -m training dataset`, shared read-only: .path, .args, .count, .seed.

    250 images at the default 100 per file, so the last file is short (50 images).
    """
    folder = tmp_path_factory.mktemp("voronoi")
    path = folder / "voronoi.zip"
    args = ["training", "dataset", "--out", path, "--count", "250", "--seed", "7"]
    run_cli(*args, cwd=folder, check=True)
    return SimpleNamespace(path=path, args=args, count=250, seed=7)
