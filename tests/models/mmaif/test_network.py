"""MMAIF as a fusion model: any input size, modes, seeds, weights round trip, and a tiny
model that fits one batch (spec §5, §7, §12)."""

from __future__ import annotations

import pytest
import torch

import unifuse
from unifuse.errors import ConfigError, InputMismatchError, WeightsError
from unifuse.models.mmaif import MMAIF, save_mmaif_weights
from unifuse.models.mmaif.objective import degraded_batch, dit_parameters, get_teacher, make_target, training_losses


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    m = unifuse.create_model("mmaif", preset="tiny").eval()
    for d in m.dits.values():  # non-trivial weights so outputs depend on the inputs
        for name, p in d.named_parameters():
            if p.abs().max() == 0 and "bias" not in name:
                torch.nn.init.normal_(p, std=0.02)
    return m


@pytest.mark.parametrize("hw", [(16, 16), (21, 37), (8, 5)])
def test_any_size_in_both_modes(tiny, hw):
    a, b = torch.rand(2, 3, *hw), torch.rand(2, 3, *hw)
    with torch.no_grad():
        for mode in ("reg", "flow"):
            out = tiny(a, b, prompt="remove the haze", mode=mode, steps=2)
            assert out.shape == a.shape and float(out.min()) >= 0 and float(out.max()) <= 1


def test_prompt_seed_and_mode_change_the_output(tiny):
    a, b = torch.rand(1, 3, 16, 24), torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        r1, r2 = tiny(a, b, prompt="remove the rain"), tiny(a, b, prompt="brighten the dark image")
        assert not torch.equal(r1, r2) and torch.equal(r1, tiny(a, b, prompt="remove the rain"))
        f = lambda s: tiny(a, b, mode="flow", steps=3, seed=s)  # noqa: E731
        assert torch.equal(f(1), f(1)) and not torch.equal(f(1), f(2))
        assert not torch.equal(r1, f(1))
        # per-sample prompts in a batch
        both = tiny(torch.cat([a, a]), torch.cat([b, b]), prompt=["remove the rain", "brighten the dark image"])
        torch.testing.assert_close(both, torch.cat([r1, r2]))


def test_bad_inputs_are_refused_in_one_line(tiny):
    a = torch.rand(1, 3, 8, 8)
    with pytest.raises(InputMismatchError):
        tiny(a, torch.rand(1, 3, 8, 9))
    with pytest.raises(InputMismatchError):
        tiny(a, a, prompt=["x", "y"])
    with pytest.raises(ConfigError, match="--steps"):
        tiny(a, a, mode="flow", steps=0)
    reg_only = unifuse.create_model("mmaif", preset="tiny", variants=["reg"])
    with pytest.raises(ConfigError, match=r"no 'flow' variant \(it holds: reg\)"):
        reg_only(a, a, mode="flow")
    with pytest.raises(ConfigError, match="unknown MMAIF preset"):
        unifuse.create_model("mmaif", preset="huge")
    with pytest.raises(ConfigError, match="bad tokenizer_kwargs"):
        unifuse.create_model("mmaif", preset="tiny", tokenizer="haar", tokenizer_kwargs={"f": 2})
    haar = unifuse.create_model("mmaif", preset="tiny", tokenizer="haar")  # the preset's unshuffle kwargs are dropped
    assert haar.tokenizer.z_ch == 192 and haar.pad_multiple == 16


def test_weights_round_trip_adopts_the_file_config(tiny, tmp_path):
    path = save_mmaif_weights(tiny, tmp_path / "tiny.safetensors")
    m = unifuse.load_model("mmaif", weights=str(path))  # built as 'small', rebuilt as the file's 'tiny'
    assert m.config == tiny.config
    a, b = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(m(a, b, prompt="x", mode="flow", steps=2), tiny(a, b, prompt="x", mode="flow", steps=2))
    small = unifuse.create_model("mmaif")
    with pytest.raises(WeightsError, match="different config"):
        small.load_weights(path, adopt_config=False)
    other = MMAIF(tiny.config)
    with pytest.raises(WeightsError, match="does not exist|not found"):
        other.load_weights(tmp_path / "missing.safetensors")
    sd = {k: v for k, v in tiny.state_dict().items() if not k.startswith("dits.flow")}
    with pytest.raises(WeightsError, match="missing keys: dits.flow"):
        other.load_weights(sd)


def test_refusal_without_weights(monkeypatch, tmp_path):
    from unifuse.inference.fuse import Fuser
    from unifuse.models.mmaif import checkpoint

    monkeypatch.setattr(checkpoint, "_WEIGHTS_DIR", tmp_path)  # a build without shipped weights
    with pytest.raises(ConfigError, match="no trained weights ship for model 'mmaif'"):
        Fuser("mmaif")


def test_shipped_weights_load_by_default():
    from unifuse.models.mmaif.checkpoint import read_config, shipped_weights_path

    path = shipped_weights_path()
    if path is None:
        pytest.skip("this build ships no MMAIF weights")
    net = unifuse.load_model("mmaif")  # no weights argument: the shipped file, its own config
    assert net.config.to_dict() == read_config(path)
    assert net.config.variants == ("reg", "flow")  # both modes ship; reg (the first) is the default
    a = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        out = net(a, a.flip(-1), prompt="remove the noise")
        assert out.shape == a.shape and 0 <= float(out.min()) and float(out.max()) <= 1
        assert torch.equal(out, net(a, a.flip(-1), prompt="remove the noise", mode="reg"))
        # the flow DiT starts from the mean of the two source latents and is sampled as an ODE (g = 0)
        assert net.config.prior == "mean" and net.config.g == 0
        flow = net(a, a.flip(-1), prompt="remove the noise", mode="flow")  # 5-step midpoint sampler
        assert flow.shape == a.shape and not torch.equal(flow, out)
        assert torch.equal(flow, net(a, a.flip(-1), prompt="remove the noise", mode="flow", seed=1))  # no noise: seed-free


@pytest.mark.parametrize("variant", ["reg", "flow"])
def test_tiny_model_fits_one_batch(variant):
    torch.manual_seed(0)
    m = unifuse.create_model("mmaif", preset="tiny", variants=[variant])
    g = torch.Generator().manual_seed(0)
    clean_a, clean_b = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    batch = {"A": (clean_a + 0.1 * torch.randn(2, 3, 16, 16, generator=g)).clamp(0, 1), "B": clean_b * 0.5,
             "A_clean": clean_a, "B_clean": clean_b, "prompt": ["clean up the grain", "brighten the dark image"]}
    batch["GT"] = make_target(batch)  # the default teacher on the clean pair
    opt = torch.optim.AdamW(dit_parameters(m), lr=2e-3)
    losses = []
    for step in range(50):
        # flow: a fixed (t, ε) draw, so the loss measures fitting, not the sampling noise
        out = training_losses(m, batch, variant, lam=0.0, generator=torch.Generator().manual_seed(0))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out[variant].detach()))
    assert losses[-1] < losses[0] / 10, losses[::10]
    assert float(out["balance"].detach()) >= 1.0 - 1e-6  # the balance term is >= 1 up to routing ties


def test_training_losses_terms(tiny):
    g = torch.Generator().manual_seed(0)
    a, b, gt = (torch.rand(2, 3, 16, 16, generator=g) for _ in range(3))
    batch = {"A": a, "B": b, "GT": gt, "prompt": "fuse"}
    out = training_losses(tiny, batch, "flow", lam=0.1, alpha_bal=0.01, generator=torch.Generator().manual_seed(1))
    assert set(out) == {"loss", "flow", "aux", "balance"}
    torch.testing.assert_close(out["loss"], out["flow"] + 0.1 * out["aux"] + 0.01 * out["balance"])
    skipped = training_losses(tiny, batch, "reg", aux_every=2, step=1)
    assert float(skipped["aux"]) == 0.0
    custom = training_losses(tiny, {"A": a, "B": b}, "reg", teacher=lambda x, y: torch.maximum(x, y))
    assert torch.isfinite(custom["loss"])


def test_degraded_batch_degrades_sources_but_not_the_target():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    batch = degraded_batch(a, b, task="ivf", seed=5)
    assert batch["A"].shape == a.shape and batch["B"].shape == b.shape
    assert all(len(t) >= 1 for t in batch["degradations"]) and all(isinstance(p, str) and p for p in batch["prompt"])
    assert not torch.equal(torch.cat([batch["A"], batch["B"]]), torch.cat([a, b]))  # something was degraded
    torch.testing.assert_close(batch["GT"], get_teacher()(a, b))  # the teacher saw the clean pair
    again = degraded_batch(a, b, task="ivf", seed=5)
    assert torch.equal(again["A"], batch["A"]) and again["prompt"] == batch["prompt"]


def test_flow_training_path_starts_where_sampling_starts():
    """With ``prior: mean`` the flow path runs from the sources' mean latent to the target latent
    (Z_t = (1 − t)·(Z_A + Z_B)/2 + t·Z_G), the start the sampler uses; Gaussian-prior settings are refused
    with a noise term that assumes the Gaussian prior (g > 0)."""
    torch.manual_seed(0)
    m = unifuse.create_model("mmaif", preset="tiny", prior="mean", g=0.0)
    a, b = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    seen, velocity = {}, m.velocity

    def spy(z_t, t, z_a, z_b, text):
        seen.update(z_t=z_t, t=t, z_a=z_a, z_b=z_b)
        return velocity(z_t, t, z_a, z_b, text)

    m.velocity = spy
    teacher = lambda x, y: torch.maximum(x, y)  # noqa: E731
    training_losses(m, {"A": a, "B": b}, "flow", lam=0.0, teacher=teacher, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z_g = m.encode_images(a, b, teacher(a, b))[2]
    t = seen["t"].view(-1, 1, 1, 1)
    torch.testing.assert_close(seen["z_t"], (1 - t) * (seen["z_a"] + seen["z_b"]) / 2 + t * z_g)
    with torch.no_grad():
        z0 = m.prior_sample(seen["z_a"], seen["z_b"])
    torch.testing.assert_close(z0, (seen["z_a"] + seen["z_b"]) / 2)
    with pytest.raises(ConfigError, match="g: 0"):
        unifuse.create_model("mmaif", preset="tiny", prior="mean", g=1.0)
