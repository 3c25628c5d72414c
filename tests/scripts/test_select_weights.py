"""scripts/select_weights.py: score a run's checkpoints on fixed training crops and name the best."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from unifuse.cli.main import main as cli

from script_loader import load_script

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / "configs" / "tita_smoke.yaml")


def _script():
    return load_script("select_weights")


def test_scores_every_checkpoint_and_picks_the_lowest_sum(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli(["train", SMOKE, "--out", str(run), "--iterations", "2", "--no-progress", "--set", "checkpoint_every=1"]) == 0
    capsys.readouterr()
    mod = _script()
    assert mod.main([str(run), "--crop", "32", "--batch", "4"]) == 0
    out = capsys.readouterr().out
    rows = {m.group(1): [float(x) for x in m.group(2).split(" | ")]
            for m in re.finditer(r"^\| ([^|]+?) \| ([-\d. |]+?) \|$", out, re.M)}
    assert set(rows) == {"max(A, B)", "(A + B) / 2", "step 1 ema", "step 1 live", "step 2 ema", "step 2 live"}
    for vals in rows.values():  # three task means and their sum
        assert len(vals) == 4 and abs(sum(vals[:3]) - vals[3]) < 2e-3
    best = min((k for k in rows if k.startswith("step")), key=lambda k: rows[k][3])
    step, kind = best.split()[1:]
    assert f"best: step {step} kind {kind}" in out
    # the yardstick rows are the task losses of max / mean of the very crops the checkpoints see
    cfg = mod.from_dict(mod.read_yaml(run / "config.yaml"), "t")
    task = cfg.tasks[0]
    a, b = mod.fixed_crops(cfg, task, 32, 12345)
    direct = mod.mean_loss(mod.make_task_loss(cfg, task), torch.maximum, a, b, 4)
    assert abs(direct - rows["max(A, B)"][0]) < 1e-3


def test_unknown_step_is_a_one_line_error(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli(["train", SMOKE, "--out", str(run), "--iterations", "1", "--no-progress", "--set", "checkpoint_every=1"]) == 0
    capsys.readouterr()
    assert _script().main([str(run), "--steps", "999"]) == 2
    err = capsys.readouterr().err
    assert "select_weights: none of the steps [999]" in err and "Traceback" not in err
    assert _script().main([str(tmp_path / "nope")]) == 2
    assert "select_weights:" in capsys.readouterr().err
