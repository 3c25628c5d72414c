"""Task routers with noisy top-k gating over a shared adapter bank (spec §4.2–§4.3, §8.2).

Token rows ``φ`` ``(T, c)`` (``c = C/4``) are routed by the router of their task:
``gates = Softmax(TopK(φ·W_g[k] (+ noise in training)))`` placed at the chosen adapters,
zeros elsewhere. The adapters' outputs are mixed in log space (official) or linearly
(paper Eq. 4). A Shazeer-style load-balancing loss comes with every call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class Adapter(nn.Module):
    """``Linear(c, h) -> ReLU -> Linear(h, c)`` (official ``MLP``; names ``fc1``, ``fc2``)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


@dataclass
class Routing:
    """What one routing call did.

    Attributes:
        gates: ``(T, N_A)`` gate of every adapter per token (after the 1e-4 threshold).
        importance: ``(N_A,)`` sum of the (unthresholded) gates over tokens.
        load: ``(N_A,)`` tokens per adapter (eval), or the summed probability of being in
            the top k (training with noise).
        aux_loss: scalar load-balancing loss ``coef·(cv²(importance) + cv²(load))``.
    """

    gates: torch.Tensor
    importance: torch.Tensor
    load: torch.Tensor
    aux_loss: torch.Tensor


def cv_squared(v: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation ``var(v) / (mean(v)² + 1e-10)`` (unbiased variance; 0 for one entry)."""
    v = v.float()
    if v.numel() == 1:
        return v.new_zeros(())
    return v.var() / (v.mean() ** 2 + 1e-10)


class MixtureOfAdapters(nn.Module):
    """Router bank ``w_gate``/``w_noise`` ``(tasks, c, N_A)`` (zero init) + ``N_A`` adapters.

    Official attribute names (``MoA.w_gate``, ``MoA.experts.{e}.fc1`` …, buffers ``mean``
    and ``std`` of the standard normal).
    """

    def __init__(self, dim: int, hidden: int, num_adapters: int = 4, top_k: int = 2, task_num: int = 3,
                 noise_epsilon: float = 0.1, gate_threshold: float = 1e-4, loss_coef: float = 1e-3,
                 combine: str = "logsumexp", mix_mode: str = "gates"):
        super().__init__()
        self.num_adapters, self.k = num_adapters, top_k
        self.noise_epsilon, self.gate_threshold, self.loss_coef = noise_epsilon, gate_threshold, loss_coef
        self.combine, self.mix_mode = combine, mix_mode
        self.experts = nn.ModuleList(Adapter(dim, hidden) for _ in range(num_adapters))
        self.w_gate = nn.Parameter(torch.zeros(task_num, dim, num_adapters))
        self.w_noise = nn.Parameter(torch.zeros(task_num, dim, num_adapters))
        self.register_buffer("mean", torch.tensor([0.0]))
        self.register_buffer("std", torch.tensor([1.0]))

    # gating ------------------------------------------------------------------------
    def _topk_gates(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(T, N_A)`` logits -> (gates with softmax over the top k, top k+1 values)."""
        top_vals, top_idx = logits.topk(min(self.k + 1, self.num_adapters), dim=1)
        gates = torch.zeros_like(logits).scatter(1, top_idx[:, :self.k], top_vals[:, :self.k].softmax(dim=1))
        return gates, top_vals

    def _prob_in_top_k(self, clean, noisy, std, top_vals) -> torch.Tensor:
        """P(adapter in the top k) under fresh noise (Shazeer et al. 2017, official ``_prob_in_top_k``)."""
        thr_in = top_vals[:, self.k:self.k + 1]
        thr_out = top_vals[:, self.k - 1:self.k]
        normal = torch.distributions.Normal(self.mean, self.std)
        p_in = normal.cdf((clean - thr_in) / std)
        p_out = normal.cdf((clean - thr_out) / std)
        return torch.where(noisy > thr_in, p_in, p_out)

    def task_gates(self, phi: torch.Tensor, task: int, noisy: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Gates ``(T, N_A)`` of one router and the load vector ``(N_A,)``."""
        clean = phi @ self.w_gate[task]
        if noisy:
            std = F.softplus(phi @ self.w_noise[task]) + self.noise_epsilon
            logits = clean + torch.randn_like(clean) * std
        else:
            logits = clean
        gates, top_vals = self._topk_gates(logits)
        if noisy and self.k < self.num_adapters:
            load = self._prob_in_top_k(clean, logits, std, top_vals).sum(0)
        else:
            load = (gates > 0).sum(0)
        return gates, load

    def route(self, phi: torch.Tensor, task: int | torch.Tensor) -> Routing:
        """Route token rows ``phi`` ``(T, c)``.

        ``task``: a router index (noisy gating while ``self.training``, as the official
        code), or router weights ``(tasks,)`` (≥ 0, summing to 1), which mix the noise-free
        gates of every router (``mix_mode="gates"``) or their clean logits before the top k
        (``"logits"``); a mixture may activate up to ``N_A`` adapters.
        """
        if isinstance(task, int):
            gates, load = self.task_gates(phi, task, noisy=self.training)
        else:
            w = task.to(phi.dtype)
            if self.mix_mode == "logits":
                gates, _ = self._topk_gates(phi @ torch.einsum("t,tce->ce", w, self.w_gate))
            else:
                gates = sum(w[t] * self.task_gates(phi, t, noisy=False)[0] for t in range(w.numel()) if w[t] != 0)
            load = (gates > 0).sum(0)
        importance = gates.sum(0)
        aux = self.loss_coef * (cv_squared(importance) + cv_squared(load))
        gates = gates.masked_fill(gates <= self.gate_threshold, 0.0)
        return Routing(gates, importance, load, aux)

    # adapters ------------------------------------------------------------------------
    def adapters(self, phi: torch.Tensor) -> torch.Tensor:
        """Every adapter on every row: ``(T, c)`` -> ``(T, N_A, c)`` (dense; the adapters are tiny)."""
        w1 = torch.cat([e.fc1.weight for e in self.experts], 0)  # (N_A·h, c)
        b1 = torch.cat([e.fc1.bias for e in self.experts], 0)
        hid = torch.relu(F.linear(phi, w1, b1)).view(phi.shape[0], self.num_adapters, -1)  # (T, N_A, h)
        w2 = torch.stack([e.fc2.weight for e in self.experts], 0)  # (N_A, c, h)
        b2 = torch.stack([e.fc2.bias for e in self.experts], 0)  # (N_A, c)
        return torch.einsum("teh,ech->tec", hid, w2) + b2

    def mix(self, outs: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """Combine adapter outputs ``(T, N_A, c)`` with gates ``(T, N_A)`` -> ``(T, c)``.

        ``logsumexp``: ``log Σ_e g_e·exp(A_e)`` over adapters with ``g_e > 0`` (the
        official log-space mixture, computed stably); ``linear``: ``Σ_e g_e·A_e``.
        """
        if self.combine == "linear":
            return torch.einsum("tec,te->tc", outs, gates)
        on = gates > 0
        log_g = torch.where(on, gates, torch.ones_like(gates)).log().masked_fill(~on, float("-inf"))
        return torch.logsumexp(outs + log_g[..., None], dim=1)

    def forward(self, phi: torch.Tensor, task: int | torch.Tensor) -> tuple[torch.Tensor, Routing]:
        """``(T, c)`` rows -> mixed adapter output ``(T, c)`` and the :class:`Routing`."""
        r = self.route(phi, task)
        return self.mix(self.adapters(phi), r.gates), r
