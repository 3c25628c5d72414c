"""Mixture-of-experts feed-forward with GLU experts and shared experts (DeepSeek style).

``y = Σ_shared E_s(x) + Σ_{k ∈ topK(s)} w_k·E_k(x)`` where ``s = softmax(x·W_r)`` over the
routed experts (router without bias), the top-K scores are chosen greedily and the gate
weights ``w`` are those scores renormalised to sum to 1. Every token goes to exactly K routed
experts plus every shared expert; there is no capacity limit and no token dropping. Each
routed expert runs only on the tokens routed to it.

The load-balancing term (Switch / DeepSeek style) is ``L_bal = E·Σ_i f_i·P_i`` with
``f_i`` = (tokens routed to expert i)/(K·T) and ``P_i`` = the mean router score of expert i;
it equals 1 whenever the router's mean scores are uniform.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SwiGLU(nn.Module):
    """``W_2·(SiLU(W_1·x) ⊙ W_3·x)``, acting on the last axis."""

    def __init__(self, dim: int, hidden: int, bias: bool = False):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=bias)
        self.w3 = nn.Linear(dim, hidden, bias=bias)
        self.w2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Routing(NamedTuple):
    """Router decisions for T tokens: ``scores`` (T, E) softmax, ``index`` (T, K), ``gates`` (T, K)."""

    scores: Tensor
    index: Tensor
    gates: Tensor


def route_topk(logits: Tensor, k: int) -> Routing:
    """Softmax over experts, greedy top-k, gates renormalised over the chosen k."""
    scores = logits.float().softmax(dim=-1)
    top, index = scores.topk(k, dim=-1)
    return Routing(scores, index, top / top.sum(dim=-1, keepdim=True))


def load_balance_loss(scores: Tensor, index: Tensor) -> Tensor:
    """``E·Σ_i f_i·P_i`` for ``scores`` (T, E) and routed ``index`` (T, K); a 0-dim tensor."""
    T, E = scores.shape
    counts = torch.zeros(E, dtype=scores.dtype, device=scores.device).index_add_(
        0, index.reshape(-1), torch.ones(index.numel(), dtype=scores.dtype, device=scores.device))
    f = counts / index.numel()
    return E * (f * scores.mean(dim=0)).sum()


def expert_load(index: Tensor, n_experts: int) -> Tensor:
    """Fraction of routed slots per expert, ``(E,)`` summing to 1 (for logging)."""
    return torch.bincount(index.reshape(-1), minlength=n_experts).float() / index.numel()


class MoEGLU(nn.Module):
    """Routed + shared SwiGLU experts on ``(..., dim)`` tokens.

    ``forward`` returns ``(y, balance_loss, load)``: ``y`` the input's shape, the 0-dim
    load-balancing term and the ``(E,)`` expert-load histogram of this call.
    """

    def __init__(self, dim: int, hidden: int, n_experts: int = 4, top_k: int = 2, n_shared: int = 1,
                 shared_hidden: int | None = None, router_std: float = 0.02):
        super().__init__()
        if not 1 <= top_k <= n_experts:
            raise ValueError(f"top_k must be in [1, n_experts={n_experts}], got {top_k}")
        self.top_k, self.n_experts, self.router_std = top_k, n_experts, router_std
        self.router = nn.Linear(dim, n_experts, bias=False)
        self.experts = nn.ModuleList(SwiGLU(dim, hidden) for _ in range(n_experts))
        self.shared = nn.ModuleList(SwiGLU(dim, shared_hidden or hidden) for _ in range(n_shared))
        nn.init.normal_(self.router.weight, std=router_std)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        r = route_topk(self.router(x), self.top_k)
        y = torch.zeros_like(x)
        for s in self.shared:
            y = y + s(x)
        flat = r.index.reshape(-1)  # (T*K,)
        token = torch.arange(x.shape[0], device=x.device).repeat_interleave(self.top_k)
        gate = r.gates.reshape(-1).to(x.dtype)
        for e, expert in enumerate(self.experts):
            sel = (flat == e).nonzero(as_tuple=True)[0]
            if sel.numel():
                t = token[sel]
                y = y.index_add(0, t, expert(x[t]) * gate[sel, None])
        return y.reshape(shape), load_balance_loss(r.scores, r.index), expert_load(r.index, self.n_experts)
