"""service.files: a failed write leaves the previous file and no temporary behind."""

from __future__ import annotations

import pytest

from service.files import atomic_path, write_atomic


def test_write_atomic_replaces_the_file_whole(tmp_path):
    target = tmp_path / "manifest.json"
    write_atomic(target, "old")
    write_atomic(target, b"new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_atomic_path_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "default.json"
    target.write_text("previous")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["default.json"]


def test_write_atomic_takes_over_the_temporary_a_killed_writer_left(tmp_path):
    target = tmp_path / "manifest.json"
    (tmp_path / ".manifest.json.tmp").write_text("half of a manifest")  # a writer SIGKILLed mid-write
    write_atomic(target, "whole")
    assert target.read_text() == "whole" and [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
