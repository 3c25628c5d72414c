"""scripts/ship_weights.py: a run's EMA weights become the package's default TITA weights."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import unifuse
from unifuse.models.tita import TITA
from unifuse.training.checkpoint import save_checkpoint

from script_loader import load_script


def _script():
    return load_script("ship_weights")


def _run(tmp_path, model_cfg, steps=(100, 200)):
    run = tmp_path / "run"
    nets, lives = {}, {}
    for s in steps:
        torch.manual_seed(s)
        live, ema = TITA(**model_cfg), TITA(**model_cfg)
        cfg = {"name": "toy", "iterations": 300, "model": {"name": "tita", **ema.config.to_dict()}}
        save_checkpoint(run / "checkpoints", s, live.state_dict(), ema.state_dict(), {"config": cfg})
        nets[s], lives[s] = ema, live
    (run / "train_log.csv").write_text("step,time_s\n100,50.5\n200,101.0\n")
    return run, nets, lives


def test_ships_ema_weights_with_description(tmp_path):
    run, nets, lives = _run(tmp_path, {})
    dest = tmp_path / "weights"
    assert _script().main([str(run), "--step", "100", "--dest", str(dest), "--hardware", "toy box"]) == 0
    shipped = load_file(str(dest / "tita.safetensors"))
    assert all(torch.equal(shipped[k], v) for k, v in nets[100].state_dict().items())
    info = json.loads((dest / "tita.json").read_text())
    assert (info["step"], info["wall_time_s"], info["hardware"], info["parameters"]) == (100, 50.5, "toy box", 1386865)
    net = unifuse.load_model("tita", weights=str(dest / "tita.safetensors"))
    a, b = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(a, b), nets[100].eval()(a, b))
    # default: the newest checkpoint; --kind live: the training weights instead of the EMA
    assert _script().main([str(run), "--dest", str(dest)]) == 0
    assert json.loads((dest / "tita.json").read_text())["step"] == 200
    assert _script().main([str(run), "--step", "100", "--kind", "live", "--dest", str(dest)]) == 0
    shipped = load_file(str(dest / "tita.safetensors"))
    assert all(torch.equal(shipped[k], v) for k, v in lives[100].state_dict().items())
    assert "live" in json.loads((dest / "tita.json").read_text())["weights"]["kind"]


def test_refuses_non_default_architecture_and_missing_runs(tmp_path, capsys):
    run, _, _ = _run(tmp_path, {"embed_dim": 12, "num_heads": 2, "depths_ex": 1, "depths_fusion": (2,), "depths_re": 1}, (100,))
    assert _script().main([str(run), "--dest", str(tmp_path / "w")]) == 2
    assert "not the default TITA architecture" in capsys.readouterr().err
    assert not (tmp_path / "w" / "tita.safetensors").exists()
    assert _script().main([str(tmp_path / "nothing"), "--dest", str(tmp_path / "w")]) == 2
    assert _script().main([str(run), "--step", "7", "--dest", str(tmp_path / "w")]) == 2
    assert "no checkpoint for step 7" in capsys.readouterr().err


def test_shipped_weights_describe_themselves():
    """When the package ships weights, their description ships too and matches the file."""
    path = unifuse.models.tita.checkpoint.shipped_weights_path()
    if path is None:
        pytest.skip("this build ships no TITA weights")
    import hashlib

    info = json.loads((path.parent / "tita.json").read_text())
    assert info["weights"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["config"]["model"]["name"] == "tita"
