"""`python -m training rank`: every kept checkpoint measured on the same latents, the best one named."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from training import checkpoint

N = 64


@pytest.fixture(scope="module")
def ranked(tiny_run, synthetic_zip, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("rank") / "rank.json"
    result = run_cli(
        "training", "rank", "--run-dir", tiny_run, "--data", synthetic_zip, "--n", N, "--out", out, check=True
    )
    return {"stdout": result.stdout, "report": json.loads(out.read_text())}


def test_rank_measures_every_kept_checkpoint_with_both_weight_sets(ranked, tiny_run):
    kept = [step for step, _ in checkpoint.list_checkpoints(tiny_run)]
    best_step = json.loads((tiny_run / "checkpoints" / "best.json").read_text())["step"]
    rows = ranked["report"]["rows"]
    assert sorted({row["step"] for row in rows}) == sorted(set(kept) | {best_step})
    assert {row["weights"] for row in rows} == {"raw", "ema"}  # the tiny run keeps a moving average
    assert all(row["figures"]["n"] == N for row in rows)
    for row in rows:  # one printed line per row, with its score
        assert any(
            line.split()[:3] == [str(row["step"]), row["weights"], f"{row['figures']['score']:.3f}"]
            for line in ranked["stdout"].splitlines()
        ), row


def test_rank_names_the_lowest_score_and_how_to_export_it(ranked, tiny_run, synthetic_zip):
    rows, best = ranked["report"]["rows"], ranked["report"]["best"]
    assert best["figures"]["score"] == min(row["figures"]["score"] for row in rows)
    marked = [line.split() for line in ranked["stdout"].splitlines() if line.endswith("<- best")]
    assert [line[:3] for line in marked] == [[str(best["step"]), best["weights"], f"{best['figures']['score']:.3f}"]]
    kept = (tiny_run / "checkpoints" / f"ckpt-{best['step']:07d}.npz").exists()
    command = next(line for line in ranked["stdout"].splitlines() if line.startswith("export it: "))
    assert f"--checkpoint {best['step'] if kept else 'best'} --weights {best['weights']}" in command


def test_rank_export_command_works(ranked, tmp_path, synthetic_zip):
    """The printed command, run as printed (with a store and a name), exports the ranked checkpoint;
    with --train-data its card carries the figures `evaluate --train-data` prints for that version."""
    command = next(line for line in ranked["stdout"].splitlines() if line.startswith("export it: "))
    args = command.removeprefix("export it: python -m ").replace("NAME", "ranked").split()
    assert "--data" in args
    run_cli(*args, "--store", tmp_path, "--n", "64", "--train-data", synthetic_zip, check=True)
    card = json.loads((tmp_path / "ranked" / "1" / "model.json").read_text())
    assert card["steps"] == ranked["report"]["best"]["step"]
    assert card["weights"].split()[0] == ranked["report"]["best"]["weights"]
    data = args[args.index("--data") + 1]
    out = tmp_path / "report.json"
    model = tmp_path / "ranked" / "1"
    run_cli(
        "training", "evaluate", "--model", model, "--data", data, "--train-data", synthetic_zip, "--n", "64",
        "--out", out, check=True,
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert "memorisation" in card["fidelity"] and "memorisation" in report["distances"]
    assert card["fidelity"]["score"] == pytest.approx(report["score"])
    assert card["fidelity"]["memorisation"] == pytest.approx(report["distances"]["memorisation"]["value"])


def test_export_train_data_needs_data(tiny_run, tmp_path, synthetic_zip):
    result = run_cli(
        "training", "export", "--run-dir", tiny_run, "--store", tmp_path, "--name", "m", "--train-data", synthetic_zip
    )
    assert result.returncode == 2 and "--train-data needs --data" in result.stderr
    assert not (tmp_path / "m").exists()


def test_rank_of_one_step_repeats_its_figures(ranked, tiny_run, synthetic_zip):
    """Same latents and real images every call: a checkpoint's figures do not depend on the others ranked."""
    row = next(r for r in ranked["report"]["rows"] if r["weights"] == "raw")
    result = run_cli(
        "training", "rank", "--run-dir", tiny_run, "--data", synthetic_zip, "--n", N,
        "--steps", str(row["step"]), "--weights", "raw", check=True,
    )  # fmt: skip
    lines = [line.split() for line in result.stdout.splitlines() if line.split()[:2] == [str(row["step"]), "raw"]]
    assert lines and lines[0][2] == f"{row['figures']['score']:.3f}"
    assert lines[0][3] == f"{row['figures']['defect_free_share']:.3f}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "99999"], "no checkpoint at step [99999] (kept:"),
        (["--steps", "ten"], "expected step numbers separated by commas"),
        (["--n", "8"], "--n must be at least 16"),
    ],
)
def test_rank_rejects_bad_arguments(tiny_run, synthetic_zip, args, message):
    result = run_cli("training", "rank", "--run-dir", tiny_run, "--data", synthetic_zip, *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_rank_rejects_a_directory_that_is_not_a_run(tmp_path, synthetic_zip):
    result = run_cli("training", "rank", "--run-dir", tmp_path, "--data", synthetic_zip)
    assert result.returncode == 2
    assert "no checkpoints/" in result.stderr
