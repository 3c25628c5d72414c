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


def test_ships_a_variant_added_to_a_shipped_model_and_checks_the_start_is_unchanged(tmp_path):
    """A [reg, flow] run started from a shipped (fp16) reg file: --unchanged passes when the reg part
    is bit-identical after the fp16 conversion, fails (exit 2) when one tensor moved; --init-json is kept."""
    from unifuse.models.mmaif import save_mmaif_weights

    torch.manual_seed(1)
    reg = unifuse.create_model("mmaif", preset="tiny", variants=["reg"])
    for p in reg.parameters():
        p.data = p.data.half()
    start = save_mmaif_weights(reg, tmp_path / "start.safetensors")
    (tmp_path / "start.json").write_text(json.dumps({"step": 1300, "variants": ["reg"]}))
    model_cfg = {"preset": "tiny", "variants": ["reg", "flow"]}
    both = unifuse.create_model("mmaif", **model_cfg)
    both.load_state_dict({k: v.float() for k, v in reg.state_dict().items()}, strict=False)  # reg + text + stats
    cfg = {"name": "toy_flow", "iterations": 10, "model": {"name": "mmaif", **model_cfg}}
    ship = load_script("ship_mmaif_weights").main
    for name, touch in (("good", False), ("bad", True)):
        sd = both.state_dict()
        if touch:
            sd["dits.reg.final.weight"] = sd["dits.reg.final.weight"] + 1e-2
        run = tmp_path / name
        save_checkpoint(run / "checkpoints", 10, sd, sd, {"config": cfg})
        (run / "train_log.csv").write_text("step,time_s\n10,5.0\n")
        args = [str(run), "--dest", str(tmp_path / f"w_{name}"), "--unchanged", str(start), "--init-json", str(tmp_path / "start.json")]
        assert ship(args) == (2 if touch else 0)
    info = json.loads((tmp_path / "w_good" / "mmaif_small.json").read_text())
    assert info["variants"] == ["reg", "flow"] and info["init_model"]["step"] == 1300
    assert info["unchanged_from_init"]["tensors_bit_identical"] == len(reg.state_dict())
    assert set(info["weights"]["max_abs_output_diff_vs_checkpoint_96x128_per_mode"]) == {"reg", "flow"}
