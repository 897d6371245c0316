"""The data commands of `python -m training`: exit codes, one-line errors, and what inspect writes."""

from __future__ import annotations

import json
import zipfile

import h5py
import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli
from training.loading import load


def _assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


# dataset


@pytest.mark.parametrize(
    ("flags", "reason"),
    [(["--grains", "5", "3"], "1 <= MIN <= MAX"), (["--count", "0"], "--count")],
    ids=["grains-min-above-max", "count-zero"],
)
def test_cli_dataset_bad_arguments_exit_2(tmp_path, flags, reason):
    result = run_cli("training", "dataset", "--out", tmp_path / "bad.zip", *flags, cwd=tmp_path)
    _assert_one_line_error(result, reason)
    assert list(tmp_path.iterdir()) == []


# inspect


def test_cli_inspect_reports_summary_and_writes_preview(tmp_path, voronoi_zip):
    preview = tmp_path / "preview.png"
    result = run_cli("training", "inspect", voronoi_zip.path, "--preview", preview, "--json", cwd=tmp_path, check=True)
    summary = json.loads(result.stdout)
    data = load(voronoi_zip.path)
    assert summary["count"] == voronoi_zip.count
    assert summary["shape"] == [64, 64, 1]
    assert summary["dtype"] == "uint8"
    assert summary["range"] == [0.0, 255.0]
    assert summary["mapping"] == "0..255 -> [-1, 1]"
    assert summary["fingerprint"] == data.fingerprint
    with Image.open(preview) as image:
        assert image.size == (4 * 66 + 2, 4 * 66 + 2)  # 4x4 grid of 64 px with 2 px frames


def test_cli_inspect_key_and_default_preview_in_cwd(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("a", data=np.zeros((2, 64, 64), np.uint8))
        handle.create_dataset("b", data=np.eye(64, dtype=bool)[None].repeat(3, axis=0))
    result = run_cli("training", "inspect", path, "--key", "b", cwd=tmp_path, check=True)
    assert "bool -> [-1, 1]" in result.stdout
    assert (tmp_path / "data.h5.preview.png").is_file()


def _text_file(tmp):
    path = tmp / "notes.txt"
    path.write_text("not data\n")
    return [str(path)], str(path), "neither a zip"


def _zip_dotdot_entry(tmp):
    path = tmp / "data.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("imgs/../../evil.h5", b"whatever")
    return [str(path)], str(path), "'..'"


def _zip_bomb(tmp):
    path = tmp / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imgs/a.h5", bytes(200_000))
    return [str(path), "--max-bytes", "100000"], str(path), "above the limit"


def _nan(tmp):
    path = tmp / "nan.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("images", data=np.full((2, 64, 64), np.nan, np.float32))
    return [str(path)], str(path), "NaN or inf"


@pytest.mark.parametrize(
    "case",
    [_text_file, _zip_dotdot_entry, _zip_bomb, _nan],
    ids=["text-file", "zip-dotdot-entry", "zip-bomb", "nan"],
)
def test_cli_inspect_bad_input_exit_2_and_writes_nothing(tmp_path, case):
    args, where, reason = case(tmp_path)
    before = sorted(tmp_path.iterdir())
    result = run_cli("training", "inspect", *args, "--preview", tmp_path / "preview.png", cwd=tmp_path)
    _assert_one_line_error(result, where, reason)
    assert sorted(tmp_path.iterdir()) == before


def test_cli_inspect_missing_path_exit_2_and_writes_nothing(tmp_path):
    result = run_cli("training", "inspect", "absent.zip", cwd=tmp_path)
    _assert_one_line_error(result, "absent.zip", "no such file")
    assert list(tmp_path.iterdir()) == []
