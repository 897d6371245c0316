"""service.runs: progress and curves read from a run's progress.jsonl, shaped by the API's schemas."""

from __future__ import annotations

import json

from service.runs import read_curves, read_progress
from service.schemas import Curves, Progress

LOSS = {"step": 5, "total_steps": 30, "epoch": 0, "epochs": 2, "d_loss": 1.0, "g_loss": 2.0, "wasserstein": 0.5}
LOSS |= {"gp": 0.1, "g_lr": 1e-4, "d_lr": 1e-4, "images_per_s": 100.0, "eta_s": 3.0}


def write_lines(run_dir, *records):
    with open(run_dir / "progress.jsonl", "a") as lines:
        lines.writelines(json.dumps({"time": 1.0, **record}) + "\n" for record in records)


def test_progress_before_any_line_is_none_and_curves_are_empty_columns(tmp_path):
    assert read_progress(tmp_path) is None
    assert read_curves(tmp_path) == {key: [] for key in Curves.model_fields}


def test_progress_after_the_start_event_has_every_key_and_no_losses(tmp_path):
    write_lines(tmp_path, {"step": 0, "event": "started", "total_steps": 30})
    progress = read_progress(tmp_path)
    assert list(progress) == list(Progress.model_fields)
    assert (progress["step"], progress["total_steps"], progress["d_loss"], progress["fidelity"]) == (0, 30, None, None)


def test_progress_is_the_latest_loss_line_with_the_latest_fidelity(tmp_path):
    write_lines(tmp_path, {"step": 0, "event": "started", "total_steps": 30}, LOSS, {"step": 5, "fidelity": {"s": 1}})
    write_lines(tmp_path, {**LOSS, "step": 10, "d_loss": 0.5, "new_key": 7})
    progress = read_progress(tmp_path)
    assert list(progress) == list(Progress.model_fields)  # a key the schema does not declare is not passed on
    assert (progress["step"], progress["d_loss"], progress["fidelity"]) == (10, 0.5, {"step": 5, "s": 1})


def test_curves_by_ascending_step_a_resumed_runs_later_line_wins(tmp_path):
    write_lines(tmp_path, {**LOSS, "step": 10}, {**LOSS, "step": 5, "d_loss": 9.0}, {**LOSS, "step": 5, "d_loss": 3.0})
    curves = read_curves(tmp_path)
    assert list(curves) == list(Curves.model_fields)
    assert curves["step"] == [5, 10] and curves["d_loss"] == [3.0, 1.0]
