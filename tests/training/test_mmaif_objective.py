"""MMAIF training objective (spec mmaif.md §5, §6): cautious AdamW by hand, parameter groups,
schedule, exact resume, export that ``load_model`` reads, CLI smoke run, clear config errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_helpers import interrupt_after

from unifuse.cli.main import main
from unifuse.errors import ConfigError
from unifuse.training.cautious import CautiousAdamW
from unifuse.training.config import load_config
from unifuse.training.logging import read_csv
from unifuse.training.objectives.mmaif import no_decay, param_groups
from unifuse.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "mmaif_tiny.yaml"


def _tiny(**over):
    return load_config(TINY, over)


def _tiny_reg(**over):  # regression DiT only: half the cost (the CLI smoke run trains both)
    return _tiny(**{"model.variants": ["reg"], "objective.variant": "reg", **over})


def test_cautious_adamw_without_mask_is_torch_adamw():
    torch.manual_seed(0)
    w0 = torch.randn(5, 4)
    a, b = w0.clone().requires_grad_(True), w0.clone().requires_grad_(True)
    oa = CautiousAdamW([a], lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, caution=False)
    ob = torch.optim.AdamW([b], lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    for k in range(5):
        g = torch.randn(5, 4)
        a.grad, b.grad = g.clone(), g.clone()
        oa.step()
        ob.step()
    assert torch.allclose(a, b, atol=1e-6, rtol=0)


def test_cautious_mask_on_a_hand_case():
    """Second step: m̂, v̂ by hand; u·g <= 0 entries are masked, the rest rescaled by 1/mean(mask)."""
    p = torch.zeros(4, requires_grad=True)
    opt = CautiousAdamW([p], lr=0.1, betas=(0.5, 0.5), eps=0.0, weight_decay=0.0, caution=True)
    g1 = torch.tensor([1.0, 1.0, -1.0, 2.0])
    p.grad = g1.clone()
    opt.step()  # u = sign(g1): every entry agrees with g -> mask all ones, p = -0.1·sign(g1)
    assert torch.allclose(p, -0.1 * g1.sign())
    g2 = torch.tensor([-3.0, 1.0, 0.25, 2.0])
    p.grad = g2.clone()
    opt.step()
    m = (0.5 * 0.5 * g1 + 0.5 * g2) / (1 - 0.25)  # m2 = 0.25·g1 + 0.5·g2 over (1 − 0.5²)
    v = (0.25 * g1 ** 2 + 0.5 * g2 ** 2) / (1 - 0.25)
    u = m / v.sqrt()
    mask = (u * g2 > 0).float()
    assert mask.tolist() == [1.0, 1.0, 0.0, 1.0]  # entry 2: momentum still negative, gradient positive
    expected = -0.1 * g1.sign() - 0.1 * u * mask / mask.mean()
    assert torch.allclose(p.detach(), expected, atol=1e-6)


def test_param_groups_skip_decay_on_bias_norm_eta_and_pe_mlp():
    from unifuse.models import create_model
    from unifuse.models.mmaif.objective import dit_parameters

    model = create_model("mmaif", preset="tiny", variants=["reg"])
    params = dit_parameters(model)
    nodecay, decay = param_groups(model, params, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    nd = {names[id(p)] for p in nodecay["params"]}
    d = {names[id(p)] for p in decay["params"]}
    assert nodecay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.01
    assert len(nd) + len(d) == len(params)
    assert "dits.reg.blocks.0.attn.eta" in nd and "dits.reg.pos.mlp_h.0.weight" in nd
    assert "dits.reg.blocks.0.attn.qkv.weight" in d and "dits.reg.blocks.0.moe.experts.0.w1.weight" in d
    assert any(n.startswith("text_encoder.") for n in d)  # the hash encoder trains (with decay: a 2-D table)
    assert not any(n.startswith("tokenizer.") for n in nd | d)
    assert no_decay("x.norm1.weight", torch.nn.Parameter(torch.ones(3)))


def test_resume_equals_uninterrupted_run_and_exports_load(tmp_path):
    import unifuse

    full = Trainer(_tiny_reg(), tmp_path / "full", progress=False)
    lr = [full.objective.lr_at(s) for s in (1, 2, 3, 4)]
    assert lr[0] == pytest.approx(0.5e-3) and lr[1] == pytest.approx(1e-3) and lr[1] > lr[2] > lr[3]
    full.fit()

    interrupt_after(_tiny_reg(), tmp_path / "cut", 2)
    Trainer(_tiny_reg(), tmp_path / "cut", resume=True, progress=False).fit()
    for f in ("model.safetensors", "model_ema.safetensors", "mmaif.safetensors"):
        a, b = load_file(tmp_path / "full" / f), load_file(tmp_path / "cut" / f)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    rows = read_csv(tmp_path / "full" / "train_log.csv")
    assert strip(rows) == strip(read_csv(tmp_path / "cut" / "train_log.csv"))
    assert len(rows) == 4 and all(float(r[f"{t}_IVF"]) > 0 for r in rows for t in ("reg", "aux", "balance"))

    # the DiTs and the hash encoder moved, the (weight-free) tokenizer got fitted statistics
    init = unifuse.create_model("mmaif", preset="tiny")
    trained = load_file(tmp_path / "full" / "model.safetensors")
    assert not torch.equal(trained["dits.reg.blocks.0.attn.qkv.weight"], init.state_dict()["dits.reg.blocks.0.attn.qkv.weight"])
    assert not torch.equal(trained["text_encoder.embed.weight"], init.state_dict()["text_encoder.embed.weight"])
    assert not torch.equal(trained["tokenizer.scale"], torch.ones_like(trained["tokenizer.scale"]))

    # both exports load: the run folder (EMA weights) and the single self-describing file
    x, y = torch.rand(1, 3, 37, 45), torch.rand(1, 3, 37, 45)
    outs = []
    for w in (tmp_path / "full", tmp_path / "full" / "mmaif.safetensors"):
        net = unifuse.load_model("mmaif", weights=str(w))
        assert net.config.variants == ("reg",)
        outs.append(net(x, y, prompt="remove the noise", mode="reg"))
    assert torch.equal(outs[0], outs[1]) and outs[0].shape == (1, 3, 37, 45)


def test_cli_smoke_run_trains_both_variants(tmp_path):
    import unifuse

    run = tmp_path / "run"
    assert main(["train", str(TINY), "--out", str(run), "--no-progress", "--iterations", "2"]) == 0
    assert (run / "checkpoints").is_dir()
    rows = read_csv(run / "train_log.csv")
    assert len(rows) == 2 and all(float(r["flow_MEF"]) > 0 and float(r["reg_MEF"]) > 0 for r in rows)
    init = unifuse.create_model("mmaif", preset="tiny").state_dict()
    trained = load_file(run / "model.safetensors")
    for k in ("dits.reg.final.weight", "dits.flow.final.weight"):
        assert not torch.equal(trained[k], init[k]), k
    net = unifuse.load_model("mmaif", weights=str(run / "mmaif.safetensors"))
    x = torch.rand(1, 3, 24, 40)
    assert net(x, x.flip(-1), mode="flow", steps=2, prompt="brighten it").shape == (1, 3, 24, 40)


def test_bad_settings_are_config_errors(tmp_path):
    for over in ({"objective.variant": "diffusion"}, {"objective.bogus": 1}, {"crop_size": 36},
                 {"objective.variant": "reg"},  # the model holds an untrained flow DiT
                 {"model": {"name": "mmaif", "preset": "tiny", "tokenizer": "small_kl_vae", "tokenizer_kwargs": {"c0": 8, "z_ch": 4},
                            "variants": ["reg", "flow"]}},  # an untrained VAE without tokenizer_weights
                 {"objective.tokenizer_weights": str(tmp_path / "none.safetensors")},
                 {"model": {"name": "tita"}}):
        with pytest.raises(ConfigError):
            Trainer(_tiny(**over), tmp_path / f"bad{abs(hash(str(over)))}", progress=False)


def test_paper_and_small_configs_parse():
    for name, variant in (("mmaif.yaml", "flow"), ("mmaif_small_cpu.yaml", "reg")):
        cfg = load_config(REPO / "configs" / name)
        assert cfg.objective.name == "mmaif" and cfg.objective.params["variant"] == variant
        assert cfg.model["variants"] == [variant]
    paper = load_config(REPO / "configs" / "mmaif.yaml")
    assert paper.optimizer.lr == 2e-4 and tuple(paper.optimizer.betas) == (0.9, 0.95) and paper.optimizer.weight_decay == 0.01
    assert paper.objective.params["warmup_steps"] == 1000 and paper.iterations == 200000 and paper.batch_size == 8


def _flow_on_reg(tmp_path, **over):
    """A tiny reg-only model file, then a [reg, flow] run that trains only the flow DiT from it."""
    import unifuse
    from unifuse.models.mmaif import save_mmaif_weights

    torch.manual_seed(3)
    reg = unifuse.create_model("mmaif", preset="tiny", variants=["reg"])
    reg.tokenizer.shift.normal_()  # non-default statistics: they must be kept, not refitted
    init = tmp_path / "reg.safetensors"
    save_mmaif_weights(reg, init)
    cfg = _tiny(**{"objective.variant": "flow", "objective.init_weights": str(init), "objective.freeze": ["text_encoder"],
                   "objective.latent_stats": 2, **over})
    return reg, init, cfg


def test_flow_dit_trains_next_to_a_frozen_reg_model_and_resumes_exactly(tmp_path):
    import unifuse

    reg, init, cfg = _flow_on_reg(tmp_path)
    full = Trainer(cfg, tmp_path / "full", progress=False)
    trained = {id(p) for p in full.params}
    assert trained == {id(p) for p in full.model.dits["flow"].parameters()}  # reg DiT and text encoder excluded
    full.fit()
    before = reg.state_dict()
    for f in ("model.safetensors", "model_ema.safetensors", "mmaif.safetensors"):
        sd = load_file(tmp_path / "full" / f)
        assert all(torch.equal(sd[k], v) for k, v in before.items()), f  # reg DiT, text encoder, statistics
    sd = load_file(tmp_path / "full" / "model.safetensors")
    fresh = unifuse.create_model("mmaif", preset="tiny").state_dict()
    assert not torch.equal(sd["dits.flow.final.weight"], fresh["dits.flow.final.weight"])
    rows = read_csv(tmp_path / "full" / "train_log.csv")
    assert len(rows) == 4 and all(float(r["flow_MEF"]) > 0 for r in rows) and "reg_MEF" not in rows[0]

    interrupt_after(cfg, tmp_path / "cut", 2)
    Trainer(cfg, tmp_path / "cut", resume=True, progress=False).fit()
    a, b = load_file(tmp_path / "full" / "mmaif.safetensors"), load_file(tmp_path / "cut" / "mmaif.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # the exported file fuses in both modes; reg output equals the reg-only model's, bit for bit
    net = unifuse.load_model("mmaif", weights=str(tmp_path / "full" / "mmaif.safetensors"))
    x, y = torch.rand(1, 3, 24, 40), torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        assert torch.equal(net(x, y, prompt="remove the noise", mode="reg"), reg.eval()(x, y, prompt="remove the noise", mode="reg"))
        assert net(x, y, prompt="remove the noise", mode="flow", steps=2).shape == (1, 3, 24, 40)


def test_init_weights_and_freeze_errors(tmp_path):
    import unifuse
    from unifuse.models.mmaif import save_mmaif_weights

    _, init, _ = _flow_on_reg(tmp_path)
    other = tmp_path / "small.safetensors"
    save_mmaif_weights(unifuse.create_model("mmaif", preset="tiny", variants=["reg"], hidden=64, heads=2), other)
    for over in ({"objective.init_weights": str(tmp_path / "none.safetensors")},
                 {"objective.init_weights": str(other)},  # another config
                 {"objective.freeze": ["no_such_module"]},
                 {"objective.freeze": "text_encoder"},  # not a list
                 {"objective.init_weights": None}):  # held reg DiT would stay untrained
        with pytest.raises(ConfigError):
            Trainer(_tiny(**{"objective.variant": "flow", "objective.init_weights": str(init), **over}),
                    tmp_path / f"bad{abs(hash(str(over)))}", progress=False)


def test_init_dit_from_warm_starts_the_flow_dit_from_the_reg_dit(tmp_path):
    """Equal tensors copied; the flow DiT's input embedding ignores Z_t and equals the reg one's on the sources."""
    from unifuse.models.mmaif.dit import patchify
    from unifuse.training.objectives import create_objective

    reg, _, cfg = _flow_on_reg(tmp_path, **{"objective.init_dit_from": "reg"})
    model = create_objective(cfg).build_model(torch.device("cpu"))
    r, f = model.dits["reg"], model.dits["flow"]
    assert torch.equal(r.blocks[0].attn.qkv.weight, f.blocks[0].attn.qkv.weight) and torch.equal(r.final.weight, f.final.weight)
    assert f.blocks[0].attn.qkv.weight.requires_grad and not r.blocks[0].attn.qkv.weight.requires_grad
    z_a, z_b = torch.randn(2, r.z_ch, 4, 4), torch.randn(2, r.z_ch, 4, 4)
    p = model.config.patch
    with torch.no_grad():
        want = r.x_embed(patchify(torch.cat([z_a, z_b], 1), p))
        got = f.x_embed(patchify(torch.cat([torch.zeros_like(z_a), z_a, z_b], 1), p))
        moved = f.x_embed(patchify(torch.cat([torch.ones_like(z_a), z_a, z_b], 1), p))
    assert torch.allclose(got, want, atol=1e-6) and torch.allclose(moved, want, atol=1e-6)  # Z_t weights start at 0
    with pytest.raises(ConfigError):  # the source must be a held, untrained DiT
        create_objective(_flow_on_reg(tmp_path, **{"objective.init_dit_from": "flow"})[2]).build_model(torch.device("cpu"))
