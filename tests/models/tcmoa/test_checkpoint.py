"""Loading TC-MoA weights: official layouts (current, older, wrapped or raw), MAE backbones, our safetensors."""

from __future__ import annotations

import re
import warnings

import pytest
import torch

import unifuse
from unifuse.errors import ConfigError, WeightsError
from unifuse.models.tcmoa import TCMoA, TCMoAConfig, load_tcmoa_weights, save_tcmoa_weights

CFG = {"patch_size": 8, "embed_dim": 32, "depth": 4, "num_heads": 2, "decoder_embed_dim": 32, "decoder_depth": 2,
       "decoder_num_heads": 2, "mlp_ratio": 2, "norm_eps": 1e-6, "interval_tau": 4, "tau_shift_value": 2,
       "shift_window_size": 4, "upsample": False, "task_num": 3, "warmup_epochs": 2}


def _official_sd(seed: int = 0) -> dict[str, torch.Tensor]:
    """A perturbed network's state dict under official names, without source embeddings (as official files)."""
    torch.manual_seed(seed)
    net = TCMoA(TCMoAConfig.from_official_config(CFG))
    sd = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v for k, v in net.state_dict().items()}
    sd = {k: v for k, v in sd.items() if ".modal_shifts." not in k}
    sd["MaxGradLoss.sobelconv.weightx"] = torch.zeros(1, 3, 3, 3)  # official loss helper: ignored
    return sd


def _legacy(sd):
    out = {}
    for k, v in sd.items():
        k = re.sub(r"^(decoder_)?blocks_MoA\.(\d+)\.MoA\.", r"\1blocks_MoA.\2.mlp.", k)
        k = k.replace("blocks_MoA", "blocks_SSF_rgb").replace("dimReduction", "SE_en_linear")
        k = re.sub(r"^FusionLayer\.", "en_projAdapter.", k)
        k = re.sub(r"^de_FusionLayer\.", "de_projAdapter.", k)
        out[k] = v
    return out


def _run(net, seed=3):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.rand(1, 3, 32, 64, generator=g), torch.rand(1, 3, 32, 64, generator=g)
    with torch.no_grad():
        return net(a, b, task="mef")


def test_official_layouts_load_identically(tmp_path):
    sd = _official_sd()
    with pytest.warns(UserWarning, match="source embeddings"):
        raw = unifuse.load_model("tcmoa", weights=sd, official_config=CFG)
    assert torch.equal(raw.blocks[1].attn.qkv.weight, sd["blocks.1.attn.qkv.weight"])
    ref = _run(raw)
    p = tmp_path / "tcmoa.pth"
    torch.save({"model": _legacy(sd), "epoch": 3}, p)  # wrapped, older key names
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        legacy = unifuse.load_model("tcmoa", weights=str(p), official_config=CFG)
    assert sum("source embeddings" in str(x.message) for x in w) == 1  # said once
    assert torch.equal(_run(legacy), ref)
    # frozen backbone, trainable TC-MoA parts
    assert not legacy.blocks[0].attn.qkv.weight.requires_grad and legacy.Alpha_encoder.requires_grad
    assert legacy.blocks_MoA[0].modal_shifts[0].requires_grad


def test_safetensors_round_trip(tmp_path):
    with pytest.warns(UserWarning):
        net = unifuse.load_model("tcmoa", weights=_official_sd(1), official_config=CFG)
    p = save_tcmoa_weights(net, tmp_path / "w.safetensors")
    again = unifuse.load_model("tcmoa", weights=str(p), official_config=CFG)  # source embeddings included: no warning
    assert torch.equal(_run(again), _run(net))
    # runtime switches are not part of what the weights mean
    unifuse.load_model("tcmoa", weights=str(p), official_config=CFG, packed_linear=False, geometry="pad")
    with pytest.raises(WeightsError, match="different config"):
        unifuse.load_model("tcmoa", weights=str(p), official_config={**CFG, "interval_tau": 2})


def test_mae_backbone_only():
    sd = {k: v for k, v in _official_sd(2).items() if TCMoA.is_backbone_key(k)}
    sd["mask_token"] = torch.zeros(1, 1, 32)
    net = TCMoA(TCMoAConfig.from_official_config(CFG))
    report = load_tcmoa_weights(net, sd)
    assert report["missing"] and all(not TCMoA.is_backbone_key(k) for k in report["missing"])
    assert torch.equal(net.decoder_pred.weight, sd["decoder_pred.weight"])
    frozen = {n for n, p in net.named_parameters() if not p.requires_grad}
    assert frozen == {k for k in sd if k in dict(net.named_parameters())}
    assert net.blocks_MoA[0].MoA.w_gate.requires_grad and net.en_relative_position[0].relative_position_bias_table.requires_grad


def test_bad_checkpoints_give_one_readable_error(tmp_path):
    sd = _official_sd()
    broken = {k: v for k, v in sd.items() if not k.startswith("FusionLayer.0.")}
    broken["blocks_MoA.0.extra"] = torch.zeros(1)
    with pytest.raises(WeightsError, match=r"missing keys: FusionLayer\.0\.conv1\.weight.*unexpected keys: blocks_MoA\.0\.extra"):
        unifuse.load_model("tcmoa", weights=broken, official_config=CFG)
    with pytest.raises(WeightsError, match="do not fit.*checkpoint has patch 8, embed_dim 32, depth 4"):
        unifuse.load_model("tcmoa", weights=sd, preset="tiny")
    with pytest.raises(WeightsError, match=r"shape mismatch .*blocks\.0\.mlp\.fc1\.weight \(64, 32\) vs \(128, 32\)"):
        unifuse.load_model("tcmoa", weights=sd, official_config={**CFG, "mlp_ratio": 4})
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        unifuse.load_model("tcmoa", weights=str(bad), official_config=CFG)

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"model": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="cannot read"):  # weights_only refuses pickled code
        unifuse.load_model("tcmoa", weights=str(tmp_path / "evil.pth"), official_config=CFG)
    with pytest.raises(ConfigError):
        unifuse.load_model("tcmoa", weights="random", preset="tiny", official_config=CFG)


def test_fusing_without_weights_is_refused():
    with pytest.raises(ConfigError, match="no trained weights ship for model 'tcmoa'"):
        unifuse.fuse(torch.rand(3, 32, 32).numpy().transpose(1, 2, 0), torch.rand(32, 32).numpy(), model="tcmoa")
