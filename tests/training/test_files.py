"""training.files: a failed write leaves the previous file and no temporary behind."""

from __future__ import annotations

import pytest

from training.files import atomic_path, write_atomic


def test_write_atomic_replaces_the_file_whole(tmp_path):
    target = tmp_path / "status.json"
    write_atomic(target, "old")
    write_atomic(target, b"new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "losses.png"
    target.write_text("previous")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["losses.png"]
