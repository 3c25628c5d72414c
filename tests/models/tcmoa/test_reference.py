"""TC-MoA against the official network (``tcmoa_official_case1.pt``): decoder, fused image, prompts, aux loss."""

from __future__ import annotations

import pytest
import torch

import unifuse

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def case(reference_dir):
    p = reference_dir / "tcmoa_official_case1.pt"
    if not p.is_file():
        pytest.skip(f"{p} missing")
    return torch.load(p, weights_only=True)


@pytest.fixture(scope="module")
def net(case):
    return unifuse.load_model("tcmoa", weights=case["state_dict"], official_config=case["config"])


@pytest.mark.parametrize("task", [0, 1, 2])
def test_matches_official(case, net, task):
    ref = case[f"task{task}"]
    with torch.no_grad():
        out = net.forward_features(case["x"], case["y"], task)
        assert net.aux_loss is out.aux_loss  # the last forward's load-balancing loss
        fused = net(case["x"] * STD + MEAN, case["y"] * STD + MEAN, task=["ivf", "mef", "mff"][task])
    assert fused.shape == ref["fused"].shape == (1, 3, 112, 112)
    assert (out.decoder - ref["decoder"]).abs().max() <= 1e-5
    assert (fused - ref["fused"]).abs().max() <= 1e-5
    assert (torch.stack(out.prompts("enc", "x")) - ref["prompts_enc_x"]).abs().max() <= 1e-6
    assert (torch.stack(out.prompts("dec", "x")) - ref["prompts_dec_x"]).abs().max() <= 1e-6
    # the load-balancing loss at eval (no noise) is part of the official loss dict
    assert float(out.aux_loss) == pytest.approx(float(ref["loss"]["aux_loss"]), rel=1e-5)


def test_batch_of_two_is_per_sample(case, net):
    """Every operation except the routing statistics is per sample: a batch reproduces each sample."""
    x, y = case["x"], case["y"]
    x2, y2 = torch.cat([x, y.flip(-1)]), torch.cat([y, x.flip(-2)])
    with torch.no_grad():
        both = net.forward_features(x2, y2, 1)
        second = net.forward_features(x2[1:], y2[1:], 1)
    assert (both.decoder[:1] - case["task1"]["decoder"]).abs().max() <= 1e-5
    assert (both.decoder[1:] - second.decoder).abs().max() <= 1e-5
    pe = torch.stack(both.prompts("enc", "x"))
    assert (pe[:, :1] - case["task1"]["prompts_enc_x"]).abs().max() <= 1e-6


def test_router_weights_one_hot_equal_task(case, net):
    with torch.no_grad():
        a = net(case["x"] * STD + MEAN, case["y"] * STD + MEAN, task="0,1,0")
    assert (a - case["task1"]["fused"]).abs().max() <= 1e-5


def test_neutral_prompt_sliders_reproduce_reference(case, net):
    with torch.no_grad():
        a = net(case["x"] * STD + MEAN, case["y"] * STD + MEAN, task="mff", alpha=1.0, beta=0.0)
    assert (a - case["task2"]["fused"]).abs().max() <= 1e-5
