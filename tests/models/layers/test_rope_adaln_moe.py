"""Generic DiT blocks: 2-D RoPE (relative-position property), AdaLN modulation, NAFBlock
identity at init, MoE routing and the load-balancing term on hand-computed cases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unifuse.models.layers import LoRAAdaLN, MoEGLU, NAFBlock, apply_rope, load_balance_loss, modulate, rope_2d_angles, route_topk


def test_rope_scores_depend_only_on_the_offset():
    h, w, D = 5, 7, 16
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(D, generator=g, dtype=torch.float64), torch.randn(D, generator=g, dtype=torch.float64)
    ang = rope_2d_angles(h, w, D, base=2000.0).double()
    Q = apply_rope(q.expand(h * w, D), ang)  # the same content at every position
    K = apply_rope(k.expand(h * w, D), ang)
    S = Q @ K.T  # (N, N)
    rows, cols = torch.arange(h).repeat_interleave(w), torch.arange(w).repeat(h)
    by_offset: dict[tuple[int, int], list[float]] = {}
    for i in range(h * w):
        for j in range(h * w):
            by_offset.setdefault((int(rows[i] - rows[j]), int(cols[i] - cols[j])), []).append(float(S[i, j]))
    spreads = [max(v) - min(v) for v in by_offset.values()]
    assert max(spreads) < 1e-6  # (float32 angles) same offset -> same score, wherever the pair sits
    means = torch.tensor([v[0] for v in by_offset.values()])
    assert means.std() > 0.1  # and the score does change with the offset
    # rotation preserves norms; offset (0, 0) gives the plain dot product
    torch.testing.assert_close(Q.norm(dim=-1), q.norm().expand(h * w))
    assert abs(by_offset[(0, 0)][0] - float(q @ k)) < 1e-10


def test_rope_row_and_column_halves():
    ang = rope_2d_angles(2, 3, 8, base=2000.0)  # D/4 = 2 pairs per axis, theta = (1, 2000^-1/2)
    theta = torch.tensor([1.0, 2000.0 ** -0.5])
    rows, cols = torch.tensor([0, 0, 0, 1, 1, 1.0]), torch.tensor([0, 1, 2, 0, 1, 2.0])
    torch.testing.assert_close(ang, torch.cat([rows[:, None] * theta, cols[:, None] * theta], 1))
    with pytest.raises(ValueError):
        rope_2d_angles(2, 2, 6)


def test_modulate_forms():
    x, s, b = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(modulate(x, torch.zeros(4), torch.zeros(4)), x)  # (1 + 0)·x + 0
    torch.testing.assert_close(modulate(x, b, s, "plain"), x * s + b)
    torch.testing.assert_close(modulate(x, b, s), x * (1 + s) + b)


def test_lora_adaln_is_zero_at_init_and_low_rank():
    ada = LoRAAdaLN(32, 4, 6)
    outs = ada(torch.randn(2, 10, 32))
    assert len(outs) == 6 and all(o.shape == (2, 10, 32) and o.abs().max() == 0 for o in outs)
    assert sum(p.numel() for p in ada.parameters()) == 32 * 4 + 4 + 4 * 192 + 192
    nn.init.normal_(ada.mlp2[1].weight)
    m = torch.cat(ada(torch.randn(50, 32)), -1)  # (50, 192), rank <= 4 + 1 (bias)
    assert torch.linalg.matrix_rank(m - ada.mlp2[1].bias) <= 4


def test_nafblock_identity_at_init():
    blk = NAFBlock(8)
    x = torch.randn(2, 8, 5, 6)
    torch.testing.assert_close(blk(x), x, rtol=0, atol=0)
    nn.init.ones_(blk.beta)
    assert not torch.allclose(blk(x), x)


class Scale(nn.Module):
    """Identifiable expert: multiplies by ``k`` and records the tokens it saw."""

    def __init__(self, k):
        super().__init__()
        self.k, self.seen = k, None

    def forward(self, x):
        self.seen = x.detach().clone()
        return self.k * x


def test_moe_routes_each_token_to_its_two_highest_gates_plus_shared():
    moe = MoEGLU(4, 8, n_experts=4, top_k=2, n_shared=1)
    with torch.no_grad():
        moe.router.weight.copy_(torch.eye(4) * 5)  # logits = 5·x: a one-hot-ish token picks experts by its coordinates
    moe.experts = nn.ModuleList(Scale(float(e + 1)) for e in range(4))
    moe.shared = nn.ModuleList([Scale(10.0)])
    x = torch.tensor([[1.0, 0.5, 0.0, 0.0],   # -> experts 0, 1
                      [0.0, 0.0, 0.2, 1.0],   # -> experts 3, 2
                      [0.3, 0.0, 1.0, 0.0]])  # -> experts 2, 0
    y, bal, load = moe(x)
    chosen = {0: [0, 2], 1: [0], 2: [1, 2], 3: [1]}
    for e, toks in chosen.items():
        torch.testing.assert_close(moe.experts[e].seen, x[toks])
    torch.testing.assert_close(moe.shared[0].seen, x)  # the shared expert sees every token
    s = (5 * x).softmax(-1)
    expect = []
    for i, (e1, e2) in enumerate([(0, 1), (3, 2), (2, 0)]):
        w1, w2 = s[i, e1] / (s[i, e1] + s[i, e2]), s[i, e2] / (s[i, e1] + s[i, e2])
        expect.append(10 * x[i] + w1 * (e1 + 1) * x[i] + w2 * (e2 + 1) * x[i])
    torch.testing.assert_close(y, torch.stack(expect))
    torch.testing.assert_close(load, torch.tensor([2, 1, 2, 1]) / 6.0)
    r = route_topk(5 * x, 2)
    assert (r.index.sort(-1).values == torch.tensor([[0, 1], [2, 3], [0, 2]])).all()
    torch.testing.assert_close(r.gates.sum(-1), torch.ones(3))


def test_load_balance_term_hand_computed():
    scores = torch.tensor([[0.5, 0.3, 0.1, 0.1], [0.4, 0.4, 0.1, 0.1]])
    index = torch.tensor([[0, 1], [0, 1]])
    # f = (2/4, 2/4, 0, 0); P = (0.45, 0.35, 0.1, 0.1); L = 4·(0.5·0.45 + 0.5·0.35) = 1.6
    torch.testing.assert_close(load_balance_loss(scores, index), torch.tensor(1.6))
    uniform = torch.full((6, 4), 0.25)  # a perfectly uniform router gives exactly 1, whatever is routed
    assert float(load_balance_loss(uniform, torch.tensor([[0, 1]] * 6))) == pytest.approx(1.0)
    assert float(load_balance_loss(uniform, torch.tensor([[0, 1], [2, 3], [1, 2], [0, 3], [0, 2], [1, 3]]))) == pytest.approx(1.0)


def test_moe_backward_reaches_router_and_chosen_experts_only():
    torch.manual_seed(0)
    moe = MoEGLU(8, 16, n_experts=4, top_k=2)
    x = torch.randn(1, 8)
    y, bal, _ = moe(x)
    (y.sum() + bal).backward()
    chosen = set(route_topk(moe.router(x), 2).index[0].tolist())
    for e, ex in enumerate(moe.experts):
        assert (ex.w2.weight.grad is not None and ex.w2.weight.grad.abs().sum() > 0) == (e in chosen)
    assert moe.router.weight.grad.abs().sum() > 0
