"""`unifuse train` / `unifuse plot-training` on the smoke recipe (tiny TITA, synthetic data)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from unifuse.cli.main import main
from unifuse.models import create_model
from unifuse.training.checkpoint import latest_checkpoint
from unifuse.training.logging import read_csv

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / "configs" / "tita_smoke.yaml")


def test_train_smoke_then_plot(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", SMOKE, "--out", str(out), "--iterations", "2", "--no-progress", "--set", "checkpoint_every=1"]) == 0
    rows = read_csv(out / "train_log.csv")
    assert [r["step"] for r in rows] == ["1", "2"]
    assert all(float(r[f"loss_{t}"]) > 0 for r in rows for t in ("IVF", "MFF", "MEF"))
    assert [r["step"] for r in read_csv(out / "conflicts.csv")] == ["2"]
    meta = json.loads((out / "model.json").read_text())
    net = create_model(meta["model"], **meta["config"])
    net.load_state_dict(load_file(out / "model_ema.safetensors"), strict=True)  # EMA weights load into the model
    assert (out / "config.yaml").is_file() and latest_checkpoint(out / "checkpoints").name == "step_00000002"

    assert main(["plot-training", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("losses.png", "weights.png", "conflicts.png", "gradnorms.png"):
        assert (out / "plots" / name).is_file() and name in printed

    # an existing run is not overwritten without --resume
    assert main(["train", SMOKE, "--out", str(out), "--iterations", "2"]) == 1
    assert "--resume" in capsys.readouterr().err


def test_bad_config_key_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"base: {SMOKE}\noptimiser: {{lr: 1}}\n")
    assert main(["train", str(bad), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml: unknown key 'optimiser'" in err and "Traceback" not in err
    assert main(["plot-training", str(tmp_path)]) == 1
    assert "no train_log.csv" in capsys.readouterr().err


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL a real `unifuse train` process after its first checkpoint, resume with --resume:
    the final weights equal those of an uninterrupted run (TITA with drop-path, same threads)."""
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "unifuse", "train", SMOKE, "--out", str(killed), "--no-progress"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while latest_checkpoint(killed / "checkpoints") is None:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "no checkpoint written in time"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(60)
        proc.stderr.close()
    assert latest_checkpoint(killed / "checkpoints").name == "step_00000003"
    assert main(["train", SMOKE, "--out", str(killed), "--resume", "--no-progress"]) == 0
    assert main(["train", SMOKE, "--out", str(tmp_path / "full"), "--no-progress"]) == 0
    assert [r["step"] for r in read_csv(killed / "train_log.csv")] == [str(i) for i in range(1, 7)]
    for f in ("model.safetensors", "model_ema.safetensors"):
        a, b = load_file(killed / f), load_file(tmp_path / "full" / f)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f
