"""scripts/ship_mmaif_weights.py: a run's EMA weights become a self-describing MMAIF file that
``load_model("mmaif")`` reads (float16 parameters, float32 latent statistics) with a JSON card."""

from __future__ import annotations

import json

import torch
from safetensors import safe_open

import unifuse
from unifuse.training.checkpoint import save_checkpoint

from script_loader import load_script


def test_ships_ema_weights_as_fp16_with_description(tmp_path):
    run = tmp_path / "run"
    model_cfg = {"preset": "tiny", "variants": ["reg"]}
    torch.manual_seed(0)
    live, ema = unifuse.create_model("mmaif", **model_cfg), unifuse.create_model("mmaif", **model_cfg)
    with torch.no_grad():  # a trained-looking EMA: non-zero output layer, fitted latent statistics
        for p in ema.parameters():
            p.add_(0.01 * torch.randn_like(p))
        ema.tokenizer.scale.fill_(0.37)
    cfg = {"name": "toy", "iterations": 300, "model": {"name": "mmaif", **model_cfg}}
    save_checkpoint(run / "checkpoints", 100, live.state_dict(), ema.state_dict(), {"config": cfg})
    (run / "train_log.csv").write_text("step,time_s\n100,50.5\n")
    dest = tmp_path / "weights"
    assert load_script("ship_mmaif_weights").main([str(run), "--dest", str(dest), "--hardware", "toy box"]) == 0

    f = dest / "mmaif_small.safetensors"
    with safe_open(str(f), "pt") as fh:
        assert fh.get_tensor("dits.reg.final.weight").dtype == torch.float16
        assert fh.get_tensor("tokenizer.scale").dtype == torch.float32
        assert json.loads(fh.metadata()["config"])["variants"] == ["reg"]
    info = json.loads((dest / "mmaif_small.json").read_text())
    assert info["step"] == 100 and info["wall_time_s"] == 50.5 and info["hardware"] == "toy box"
    assert info["weights"]["dtype"] == "fp16" and info["weights"]["max_abs_param_diff_vs_checkpoint"] < 1e-3
    net = unifuse.load_model("mmaif", weights=str(f))
    sd = ema.state_dict()
    assert torch.equal(net.state_dict()["tokenizer.scale"], sd["tokenizer.scale"])
    assert all(torch.allclose(v, sd[k], atol=1e-3, rtol=1e-3) for k, v in net.state_dict().items())
    assert net.config.to_dict() == ema.config.to_dict()
