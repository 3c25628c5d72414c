"""EMA of parameters (spec §8.5): exact copy at start, θ_E ← d·θ_E + (1−d)·θ_G, buffers untouched."""

from __future__ import annotations

import torch
from torch import nn

from unifuse.training.ema import ModelEMA


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.register_buffer("table", torch.arange(3.0))


def test_ema_initial_copy_update_and_buffers():
    net = Net()
    ema = ModelEMA(net, decay=0.999)
    assert all(torch.equal(a, b) for a, b in zip(ema.module.state_dict().values(), net.state_dict().values()))
    assert ema.module is not net and not any(p.requires_grad for p in ema.module.parameters())
    theta_e = {k: v.clone().double() for k, v in ema.module.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))
        net.table.fill_(-7)  # a buffer change is not averaged in
    ema.update(net)
    g = {k: v.double() for k, v in net.state_dict().items()}
    for k in ("lin.weight", "lin.bias"):
        torch.testing.assert_close(ema.module.state_dict()[k].double(), 0.999 * theta_e[k] + 0.001 * g[k], rtol=0, atol=1e-7)
    assert torch.equal(ema.module.table, torch.arange(3.0))
    state = ema.state_dict()
    other = ModelEMA(Net(), 0.999)
    other.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), state.values()))
