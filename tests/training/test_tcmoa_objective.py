"""TC-MoA training objectives (spec tcmoa.md §5, §6, §9.3): the official losses of the reference
network at epoch 10, the schedule, frozen backbone, stage 0 -> stage 1, exact resume, CLI."""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_helpers import interrupt_after, run_gloo_ranks

from unifuse.cli.main import main
from unifuse.errors import ConfigError
from unifuse.losses.tcmoa import TCMoALoss
from unifuse.training.config import load_config
from unifuse.training.logging import read_csv
from unifuse.training.objectives.mae import patch_mask
from unifuse.training.objectives.tcmoa import decay_groups, task_loss, tcmoa_forward_terms
from unifuse.training.schedule import warmup_cosine_lr
from unifuse.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "configs" / "tcmoa_smoke.yaml"
REF = REPO / ".." / "shared" / "reference" / "tcmoa_official_case1.pt"
HERE = Path(__file__).resolve().parent


def _smoke(**over):
    over.setdefault("tensorboard", False)
    return load_config(SMOKE, over)


@pytest.mark.skipif(not REF.is_file(), reason="reference file not available")
def test_official_losses_at_epoch_10_of_the_reference_network():
    """Every entry of the official loss dicts (total, aux, prompt, image terms) of the three task
    routers, through the objective's forward and loss functions, to 1e-5 relative (float32)."""
    from unifuse.models.tcmoa import build_tcmoa

    d = torch.load(REF, weights_only=True)
    net = build_tcmoa(official_config=d["config"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.load_weights(d["state_dict"])  # holds the source embeddings too (the reference's modal_shifts)
    net.eval()  # the reference ran the routers without noise (its decoder outputs match the eval forward)
    loss = TCMoALoss()
    assert loss.use_official_kernels(d["state_dict"]) == ["grad_kernels", "select_kernels"]
    for k in range(3):
        ref = d[f"task{k}"]["loss"]
        with torch.no_grad():
            terms = tcmoa_forward_terms(net, d["x"], d["y"], k)
        out = task_loss(loss, terms, d["x"], d["y"], k, epoch=10)
        assert set(ref) <= set(out)
        for name, value in ref.items():
            assert out[name].item() == pytest.approx(value, rel=1e-5), (k, name)
        # the phase matters: at epoch 1 (warm-up) the totals are different recipes
        warm = task_loss(loss, terms, d["x"], d["y"], k, epoch=1)
        assert warm["loss"].item() != pytest.approx(ref["loss"], rel=1e-3)


@pytest.mark.skipif(not REF.is_file(), reason="reference file not available")
def test_start_from_an_official_checkpoint_freezes_its_backbone(tmp_path):
    d = torch.load(REF, weights_only=True)
    cfg = _smoke(**{"model": {"name": "tcmoa", "official_config": d["config"]}, "crop_size": 56, "iterations": 2,  # step 1 has lr 0 (warm-up from 0)
                    "objective.weights": str(REF), "objective.official_loss_kernels": True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = Trainer(cfg, tmp_path / "ft", progress=False)
    assert torch.equal(tr.objective.loss.grad_kernels[0], d["state_dict"]["MaxGradLoss.sobelconv.weightx"])
    sd = tr.model.state_dict()
    assert torch.equal(sd["blocks.0.attn.qkv.weight"], d["state_dict"]["blocks.0.attn.qkv.weight"])
    assert not tr.model.blocks[0].attn.qkv.weight.requires_grad and tr.model.Alpha_encoder.requires_grad
    tr.fit()
    out = load_file(tmp_path / "ft" / "model.safetensors")
    assert torch.equal(out["blocks.0.attn.qkv.weight"], d["state_dict"]["blocks.0.attn.qkv.weight"])
    assert not torch.equal(out["Alpha_encoder"], d["state_dict"]["Alpha_encoder"])


def test_warmup_cosine_schedule_values():
    peak, w, total, lo = 1e-3, 2, 20, 1e-5
    assert warmup_cosine_lr(0.0, peak, w, total, lo) == 0.0
    assert warmup_cosine_lr(1.0, peak, w, total, lo) == pytest.approx(peak / 2)
    assert warmup_cosine_lr(2.0, peak, w, total, lo) == pytest.approx(peak)
    assert warmup_cosine_lr(11.0, peak, w, total, lo) == pytest.approx(lo + (peak - lo) / 2)
    assert warmup_cosine_lr(20.0, peak, w, total, lo) == pytest.approx(lo)


def test_optimizer_groups_skip_decay_on_1d_and_bias_and_hold_only_trainable():
    from unifuse.models.tcmoa import build_tcmoa

    net = build_tcmoa(preset="tiny").freeze_backbone(True)
    no_decay, decay = decay_groups(net, 0.05)
    names = {id(p): n for n, p in net.named_parameters()}
    assert all(p.requires_grad for g in (no_decay, decay) for p in g["params"])
    assert all(p.ndim <= 1 or names[id(p)].endswith(".bias") for p in no_decay["params"])
    assert all(p.ndim >= 2 and not names[id(p)].endswith(".bias") for p in decay["params"])
    got = {names[id(p)] for g in (no_decay, decay) for p in g["params"]}
    assert "Alpha_encoder" in got and "blocks_MoA.0.modal_shifts.0" in got and "blocks_MoA.0.MoA.w_gate" in got
    assert not any(n.startswith(("blocks.", "decoder_blocks.", "patch_embed")) for n in got)
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.05


def test_patch_mask_masks_the_requested_share_of_whole_patches():
    m = patch_mask((3, 1, 32, 48), 8, 0.25, torch.Generator().manual_seed(0))
    per_patch = m.view(3, 4, 8, 6, 8).float().mean(dim=(2, 4))
    assert set(per_patch.unique().tolist()) <= {0.0, 1.0}
    assert per_patch.sum(dim=(1, 2)).tolist() == [6.0, 6.0, 6.0]  # round(0.25 * 24)


def test_smoke_run_phases_lr_and_random_backbone_trains(tmp_path):
    cfg = _smoke()
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    tr.fit()
    rows = read_csv(tmp_path / "run" / "train_log.csv")
    assert [r["epoch"] for r in rows] == ["0.0", "0.0", "1.0", "1.0"]  # 2 iterations per epoch
    lrs = [float(r["lr"]) for r in rows]  # warm-up over epoch 0, cosine over epoch 1 (fractional epochs)
    assert lrs == pytest.approx([0.0, 5e-4, 1e-3, 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 0.5))])
    for r in rows:
        assert all(math.isfinite(float(r[f"loss_{t}"])) for t in ("IVF", "MEF", "MFF"))
    # the main-phase MFF objective (20·(grad + pixel) + ...) is a different, much larger recipe
    assert float(rows[2]["loss_MFF"]) > 5 * float(rows[1]["loss_MFF"])
    after = load_file(tmp_path / "run" / "model.safetensors")
    # no backbone weights: the backbone is not frozen (spec §9.3) and moved, sin-cos tables did not
    assert not torch.equal(before["blocks.0.attn.qkv.weight"], after["blocks.0.attn.qkv.weight"])
    assert torch.equal(before["pos_embed"], after["pos_embed"])
    assert not torch.equal(before["Alpha_encoder"], after["Alpha_encoder"])
    ema = load_file(tmp_path / "run" / "model_ema.safetensors")
    assert all(torch.equal(ema[k], after[k]) for k in after)  # ema_decay 0: EMA = live weights


def test_stage0_mae_then_stage1_frozen_backbone(tmp_path):
    """Stage 0 writes a backbone file in MAE key layout; stage 1 loads it, freezes it (bit-equal
    after training) and trains only the TC-MoA parts, alpha and the relative tables."""
    mae = _smoke(**{"objective": {"name": "tcmoa_mae", "mask_ratio": 0.25, "warmup_iterations": 1}, "iterations": 3})
    from safetensors import safe_open

    seen = {}

    def after_step(trainer, res):
        f = tmp_path / "mae" / "mae_backbone.safetensors"
        if f.is_file():
            with safe_open(str(f), framework="pt") as h:
                seen[res.step] = h.metadata()["step"]

    tr = Trainer(mae, tmp_path / "mae", progress=False, callbacks=[after_step])
    moa_before = {k: v.clone() for k, v in tr.model.state_dict().items() if "MoA" in k}
    tr.fit()
    rows = read_csv(tmp_path / "mae" / "train_log.csv")
    assert len(rows) == 3 and all(math.isfinite(float(r["loss_recon"])) for r in rows)
    live = load_file(tmp_path / "mae" / "model.safetensors")
    assert all(torch.equal(moa_before[k], live[k]) for k in moa_before)  # stage 0 leaves the TC-MoA parts alone
    assert seen == {2: "2", 3: "3"}  # written at every checkpoint (every 2 steps and the last)
    bb = load_file(tmp_path / "mae" / "mae_backbone.safetensors")
    assert "blocks.0.attn.qkv.weight" in bb and "decoder_pred.weight" in bb and "en_relative_position.0.relative_position_bias_table" in bb
    assert not any("MoA" in k or "FusionLayer" in k or k.startswith("Alpha") for k in bb)
    assert torch.equal(bb["blocks.0.attn.qkv.weight"], live["blocks.0.attn.qkv.weight"])

    stage1 = _smoke(**{"objective.backbone": str(tmp_path / "mae")})
    tr1 = Trainer(stage1, tmp_path / "tcmoa", progress=False)
    frozen = [n for n, p in tr1.model.named_parameters() if not p.requires_grad]
    assert "blocks.0.attn.qkv.weight" in frozen and "decoder_pred.weight" in frozen
    assert {id(p) for p in tr1.params} == {id(p) for p in tr1.model.parameters() if p.requires_grad}
    tr1.fit()
    out = load_file(tmp_path / "tcmoa" / "model.safetensors")
    for k, v in bb.items():
        if "relative_position_bias_table" in k:
            continue  # trainable in stage 1 (spec §6)
        assert torch.equal(out[k], v), k
    assert not torch.equal(out["blocks_MoA.0.dimReduction.weight"], live["blocks_MoA.0.dimReduction.weight"])


def test_stage0_token_masking_and_masked_loss(tmp_path):
    cfg = _smoke(**{"objective": {"name": "tcmoa_mae", "mask_mode": "token", "mask_ratio": 0.5, "loss_on": "masked"}, "iterations": 1})
    Trainer(cfg, tmp_path / "tok", progress=False).fit()
    assert math.isfinite(float(read_csv(tmp_path / "tok" / "train_log.csv")[0]["loss_recon"]))
    with pytest.raises(ConfigError, match="mask_mode"):
        Trainer(_smoke(**{"objective": {"name": "tcmoa_mae", "mask_mode": "tokens"}}), tmp_path / "bad", progress=False)


def test_resume_matches_uninterrupted_run_and_cli(tmp_path):
    assert main(["train", str(SMOKE), "--out", str(tmp_path / "full"), "--no-progress"]) == 0

    interrupt_after(_smoke(), tmp_path / "cut", 3)
    assert main(["train", str(SMOKE), "--out", str(tmp_path / "cut"), "--resume", "--no-progress"]) == 0
    for f in ("model.safetensors", "model_ema.safetensors"):
        a, b = load_file(tmp_path / "full" / f), load_file(tmp_path / "cut" / f)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f
    drop = {"time_s"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in drop} for r in rows]  # noqa: E731
    assert strip(read_csv(tmp_path / "full" / "train_log.csv")) == strip(read_csv(tmp_path / "cut" / "train_log.csv"))
    # the run folder loads as a TC-MoA model
    import unifuse

    net = unifuse.load_model("tcmoa", weights=str(tmp_path / "full"))
    x = torch.rand(1, 3, 32, 32)
    assert net(x, x, task="mef").shape == (1, 3, 32, 32)


def test_bad_objective_settings_are_config_errors(tmp_path):
    for over in ({"objective.step_mode": "both"}, {"objective.bogus": 1}, {"objective.warmup_epochs": 30},
                 {"crop_size": 40}, {"objective.backbone": str(tmp_path / "none")}, {"objective.epochs": "many"}):
        with pytest.raises(ConfigError):
            Trainer(_smoke(**over), tmp_path / f"bad{len(str(over))}", progress=False)
    with pytest.raises(ConfigError, match="objective"):
        load_config(SMOKE, {"objective": "nope"})


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(), reason="gloo backend not available")
def test_two_gloo_processes_run_the_tcmoa_objective(tmp_path):
    """torchrun-style 2-process run: ranks stay in lock-step, write one set of outputs and agree
    with the weights they all hold (DDP averages the per-rank gradients)."""
    run_gloo_ranks([sys.executable, "-m", "unifuse", "train", str(SMOKE), "--out", str(tmp_path / "ddp"), "--no-progress",
                    "--iterations", "2"], cwd=REPO)
    rows = read_csv(tmp_path / "ddp" / "train_log.csv")
    assert [r["step"] for r in rows] == ["1", "2"] and all(math.isfinite(float(r["loss_MEF"])) for r in rows)
    ckpt = tmp_path / "ddp" / "checkpoints" / "step_00000002"
    from unifuse.training.checkpoint import load_checkpoint

    state = load_checkpoint(ckpt)["state"]
    assert state["world_size"] == 2 and len(state["ranks"]) == 2
    init = Trainer(_smoke(), tmp_path / "init", progress=False).model.state_dict()
    trained = load_file(tmp_path / "ddp" / "model.safetensors")
    assert not torch.equal(init["blocks_MoA.0.dimReduction.weight"], trained["blocks_MoA.0.dimReduction.weight"])
