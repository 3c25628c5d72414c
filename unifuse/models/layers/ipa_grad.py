"""TITA's Interaction-enhanced Pixel Attention with a hand-written backward, for training.

The same values as :class:`~.ipa.InteractionPixelAttention`'s forward (spec §4), computed with
fewer and larger products, and a backward that merges the products autograd would make one by
one (BENCHMARKS.md, issue 14, session 9):

* forward: each input goes through **one** product with its five stacked maps
  (``x → [W_1 x, W_2 x, W_q^A x, W_v^A x, W_v^B x]``, ``y → [W_1 y, W_2 y, W_q^B y, W_v^A y,
  W_v^B y]``; ``W_1, W_2``: the relation judger's first layer split by input block), and the
  judger's second layer runs once on both orderings stacked (``2N`` rows);
* backward: the gradients of those five maps are written into one ``(N, 5C)`` buffer per
  input, so ``dx`` and the five weight gradients are **one** product each (instead of five
  products plus the additions that sum them); the judger's two orderings again share their
  products. 7 products forward and 14 backward, against 14 and 28 with autograd.

All products with weights run through :func:`~.linear.linear`; the composed weights (stacked
maps, their transposes, key and output weights) are kept while the parameters are unchanged,
so within one optimizer step every forward and backward reuses them (and their oneDNN layout).
Gradients equal autograd's of the reference forward up to summation order (tests compare both in
float64 and run gradcheck). Not twice differentiable.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .linear import linear, weight_grad

__all__ = ["ipa_train", "param_key"]


class _Composed(NamedTuple):
    """Weights composed from the parameters (detached, contiguous), kept per parameter versions."""

    wx: torch.Tensor  # (5C, C): [W_1; W_2; W_q^A; W_v^A; W_v^B]
    wy: torch.Tensor  # (5C, C): [W_1; W_2; W_q^B; W_v^A; W_v^B]
    wx_t: torch.Tensor  # (C, 5C): wxᵀ, for dx = dPx · wx
    wy_t: torch.Tensor
    wk: tuple  # (W_k^A, W_k^B), each (C, C)
    wk_t: tuple  # their transposes
    wo_t: tuple  # (W_o^Aᵀ, W_o^Bᵀ)
    fc2_t: torch.Tensor  # judger's second layer, transposed


def param_key(params) -> tuple:
    """Identifies the current values of ``params``: weights composed from them stay valid
    while it is unchanged (an in-place optimizer step moves the version counters)."""
    return tuple((p._version, p.data_ptr(), p.dtype, p.device) for p in params)


def _composed(cache: dict, fc1_w, fc2_w, a_w, a_ow, b_w, b_ow) -> _Composed:
    key = param_key((fc1_w, fc2_w, a_w, a_ow, b_w, b_ow))
    hit = cache.get("train")
    if hit is not None and hit[0] == key:
        return hit[1]
    C = a_w.shape[1]
    w1, w2 = fc1_w[:, :C], fc1_w[:, C:]
    wq_a, wk_a, wv_a = a_w.chunk(3)
    wq_b, wk_b, wv_b = b_w.chunk(3)
    t = lambda w: w.t().contiguous()  # noqa: E731
    wx = torch.cat([w1, w2, wq_a, wv_a, wv_b]).detach()
    wy = torch.cat([w1, w2, wq_b, wv_a, wv_b]).detach()
    out = _Composed(wx, wy, t(wx), t(wy), (wk_a.detach().contiguous(), wk_b.detach().contiguous()),
                    (t(wk_a.detach()), t(wk_b.detach())), (t(a_ow.detach()), t(b_ow.detach())), t(fc2_w.detach()))
    cache["train"] = (key, out)
    return out


def _lin(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    return linear(x, w, bias, persistent=True)


class _IPA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, fc1_w, fc1_b, fc2_w, fc2_b, a_w, a_b, a_ow, a_ob, b_w, b_b, b_ow, b_ob,
                k_noise, v_noise, num_heads: int, cache: dict):
        shape, C = x.shape, x.shape[-1]
        x, y = x.reshape(-1, C), y.reshape(-1, C)
        N, h = x.shape[0], num_heads
        d = C // h
        W = _composed(cache, fc1_w, fc2_w, a_w, a_ow, b_w, b_ow)
        px, py = _lin(x, W.wx), _lin(y, W.wy)  # (N, 5C) each
        # relation judger on both orderings at once: rows [0, N) = fc1([x; y]), [N, 2N) = fc1([y; x])
        hid = x.new_empty(2 * N, C)
        torch.add(px[:, :C], py[:, C:2 * C], out=hid[:N])
        torch.add(py[:, :C], px[:, C:2 * C], out=hid[N:])
        hid.add_(fc1_b)
        g = F.gelu(hid)
        r = torch.softmax(linear(g, fc2_w, fc2_b), dim=-1)
        outs, saved = [], []
        for i, (q_in, own, other, mb, mow, mob) in enumerate(((x, px, py, a_b, a_ow, a_ob), (y, py, px, b_b, b_ow, b_ob))):
            b_q, _, b_v = mb.chunk(3)
            kdin = torch.addcmul(k_noise[i] - v_noise[i], q_in, r[i * N:(i + 1) * N], value=-2.0)
            kd = _lin(kdin, W.wk[i])
            qb = own[:, 2 * C:3 * C] + b_q
            logit = (qb * kd).view(N, h, d).sum(-1, keepdim=True)
            # weight of key 1, expanded over each head's channels (elementwise ops over
            # (N, h, d) with a broadcast d = 10 axis run several times slower than over (N, C))
            alpha = torch.sigmoid(logit * (1.0 / math.sqrt(d))).expand(N, h, d).reshape(N, C)
            s = slice((3 + i) * C, (4 + i) * C)  # W_v of this stream: own input (value 1), other (value 2)
            diff = own[:, s] - other[:, s]
            v = torch.addcmul(other[:, s], diff, alpha)
            outs.append(linear(v, mow, torch.addmv(mob, mow, b_v)).add_(q_in).view(shape))
            saved += [kdin, kd, qb, alpha, diff, v]
        ctx.save_for_backward(x, y, hid, g, r, a_ow, b_ow, a_b, b_b, *saved)
        ctx.meta = (shape, h, W)
        return tuple(outs)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_a, grad_b):
        x, y, hid, g, r, a_ow, b_ow, a_b, b_b, *saved = ctx.saved_tensors
        shape, h, W = ctx.meta
        N, C = x.shape
        d = C // h
        dpx, dpy = x.new_empty(N, 5 * C), x.new_empty(N, 5 * C)  # gradients of the five maps of x / y
        dr = x.new_empty(2 * N, C)
        douts = (grad_a.reshape(N, C), grad_b.reshape(N, C))
        dxy = [t.clone() for t in douts]  # the residuals; the other terms are added below
        res: dict[str, Any] = {}
        for i, (dout, q_in, dpo, dpt, ow, mb) in enumerate(((douts[0], x, dpx, dpy, a_ow, a_b),
                                                             (douts[1], y, dpy, dpx, b_ow, b_b))):
            kdin, kd, qb, alpha, diff, v = saved[6 * i:6 * i + 6]
            _, _, b_v = mb.chunk(3)
            dsum = dout.sum(0)
            dv = _lin(dout, W.wo_t[i])  # dout · W_o
            res[f"ow{i}"] = torch.addr(weight_grad(dout, v), dsum, b_v)  # out_proj(v + b_v): dW_o
            res[f"ob{i}"] = dsum
            res[f"bv{i}"] = ow.t().mv(dsum)
            s = slice((3 + i) * C, (4 + i) * C)
            torch.mul(dv, alpha, out=dpo[:, s])  # value 1 (own input)
            torch.sub(dv, dpo[:, s], out=dpt[:, s])  # value 2 (other input)
            # d logit per head, times sigmoid' / sqrt(d), expanded over the head's channels
            dl = (dv * diff).view(N, h, d).sum(-1, keepdim=True)
            a1 = alpha.view(N, h, d)[:, :, :1]
            dl.mul_(a1 * (1.0 - a1)).mul_(1.0 / math.sqrt(d))
            dl = dl.expand(N, h, d).reshape(N, C)
            dq = torch.mul(kd, dl, out=dpo[:, 2 * C:3 * C])
            res[f"bq{i}"] = dq.sum(0)
            dkd = qb * dl
            dkdin = _lin(dkd, W.wk_t[i])  # dkd · W_k
            res[f"wk{i}"] = weight_grad(dkd, kdin)
            res[f"noise{i}"] = dkdin.sum(0)
            ri = r[i * N:(i + 1) * N]
            dxy[i].addcmul_(ri, dkdin, value=-2.0)
            torch.mul(q_in, dkdin, out=dr[i * N:(i + 1) * N]).mul_(-2.0)
        # relation judger (both orderings stacked)
        dz = torch._softmax_backward_data(dr, r, -1, r.dtype)
        d_fc2_w, d_fc2_b = weight_grad(dz, g), dz.sum(0)
        dhid = torch.ops.aten.gelu_backward(_lin(dz, W.fc2_t), hid)
        d_fc1_b = dhid.sum(0)
        dpx[:, :C], dpy[:, C:2 * C] = dhid[:N], dhid[:N]  # fc1([x; y]) = W_1 x + W_2 y + b
        dpy[:, :C], dpx[:, C:2 * C] = dhid[N:], dhid[N:]  # fc1([y; x]) = W_1 y + W_2 x + b
        dxy[0].add_(_lin(dpx, W.wx_t))
        dxy[1].add_(_lin(dpy, W.wy_t))
        dwx, dwy = weight_grad(dpx, x), weight_grad(dpy, y)  # (5C, C) each
        sl = lambda t, j: t[j * C:(j + 1) * C]  # noqa: E731
        d_fc1_w = torch.cat([sl(dwx, 0) + sl(dwy, 0), sl(dwx, 1) + sl(dwy, 1)], dim=1)
        dwv_a, dwv_b = sl(dwx, 3) + sl(dwy, 3), sl(dwx, 4) + sl(dwy, 4)
        zero = x.new_zeros(C)  # the key bias cancels in k1 - k2
        d_a_w = torch.cat([sl(dwx, 2), res["wk0"], dwv_a])
        d_b_w = torch.cat([sl(dwy, 2), res["wk1"], dwv_b])
        d_a_b = torch.cat([res["bq0"], zero, res["bv0"]])
        d_b_b = torch.cat([res["bq1"], zero, res["bv1"]])
        d_noise = torch.stack([res["noise0"], res["noise1"]])
        return (dxy[0].view(shape), dxy[1].view(shape), d_fc1_w, d_fc1_b, d_fc2_w, d_fc2_b,
                d_a_w, d_a_b, res["ow0"], res["ob0"], d_b_w, d_b_b, res["ow1"], res["ob1"],
                d_noise, -d_noise, None, None)


def ipa_train(m, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IPA forward for training: ``x, y`` ``(B, L, C)`` -> updated ``(x, y)``, with the backward above.

    ``m``: an :class:`~.ipa.InteractionPixelAttention` (its parameters are the Function's inputs).
    """
    mlp, a, b = m.relation_judger[0], m.cross_attn_0_to_1, m.cross_attn_1_to_0
    cache = m.__dict__.setdefault("_train_weights", {})
    return _IPA.apply(x, y, mlp.fc1.weight, mlp.fc1.bias, mlp.fc2.weight, mlp.fc2.bias,
                      a.in_proj_weight, a.in_proj_bias, a.out_proj.weight, a.out_proj.bias,
                      b.in_proj_weight, b.in_proj_bias, b.out_proj.weight, b.out_proj.bias,
                      m.k_noise.weight, m.v_noise.weight, a.num_heads, cache)
