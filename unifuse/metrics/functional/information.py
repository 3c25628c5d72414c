"""Information-theory fusion metrics: EN, CE, MI, NMI, TE, Qncie, FMI.

All cores take float64 tensors ``a, b, f`` of shape ``(N, H, W)`` holding 0..255 values
(MATLAB ``double(uint8)``) in the MATLAB call order (src1, src2, fused) and return a float64
tensor of shape ``(N,)``. Definitions follow the reference code (VIFB / MEFB MATLAB), quirks
included; see ``docs/metrics.md``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from . import matlab as ml
from .shared import memo

Tensor = torch.Tensor

_LOG2_256 = 8.0


def _pdf(x: Tensor) -> Tensor:
    """``(N,H,W)`` integer image -> ``(N, 256)`` normalised histogram (shared between
    metrics inside :func:`.shared.shared_cache`)."""
    return memo("pdf256", (x,), None, lambda: ml.histc256(x) / float(x.shape[-1] * x.shape[-2]))


def _norm1(x: Tensor) -> Tensor:
    """``normalize1(x)`` (= VIFB Mutinf's ``int16(255 * minmax(x))`` binning), shared."""
    return memo("normalize1", (x,), None, lambda: ml.normalize1(x))


def _joint(x: Tensor, y: Tensor) -> Tensor:
    """``joint_hist256(x, y)`` counts, shared."""
    return memo("joint_hist256", (x, y), None, lambda: ml.joint_hist256(x, y))


# --------------------------------------------------------------------------- EN / CE
def entropy(a: Optional[Tensor], b: Optional[Tensor], f: Tensor) -> Tensor:
    """EN (VIFB/MEFB ``Entropy``): ``-sum p log2 p`` of the 256-bin histogram of ``floor(F)``.

    Uses ``f`` only; ``(N,H,W) -> (N,)``, range [0, 8] bits, higher is better.
    """
    return ml.entropy_from_pdf(_pdf(f))


def _cross_entropy_single(x: Tensor, f: Tensor) -> Tensor:
    p1, p2 = _pdf(x), _pdf(f)
    m = (p1 > 0) & (p2 > 0)
    ratio = torch.where(m, p1 / torch.where(m, p2, torch.ones_like(p2)), torch.ones_like(p1))
    return (torch.where(m, p1, torch.zeros_like(p1)) * torch.log2(ratio)).sum(-1)


def cross_entropy(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """CE (VIFB/MEFB ``Cross_entropy``): mean over the sources of
    ``sum_{P_X>0, P_F>0} P_X log2(P_X / P_F)`` (KL with empty-F bins skipped). Lower is better."""
    return 0.5 * (_cross_entropy_single(a, f) + _cross_entropy_single(b, f))


# --------------------------------------------------------------------------- MI family
def _mi_from_joint(joint: Tensor, log=torch.log2):
    """``joint`` ``(N, K, K)`` counts -> (H(x), H(y), H(x,y)) with the given log."""
    p = joint / joint.sum(dim=(-2, -1), keepdim=True)
    hx = ml.entropy_from_pdf(p.sum(-1), log=log)
    hy = ml.entropy_from_pdf(p.sum(-2), log=log)
    hxy = ml.entropy_from_pdf(p.flatten(-2), log=log)
    return hx, hy, hxy


def _vifb_quantise(x: Tensor) -> Tensor:
    """VIFB Mutinf binning: min-max to [0,1], ``int16(v*255)`` (0-based bin index)."""
    return ml.round_half_away(ml.minmax_normalize(x) * 255.0)


def mutual_information(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """MI (VIFB ``Mutinf``): ``MI(A,F) + MI(B,F)`` in **nats** (a sum over the sources).

    Each image is min-max stretched, quantised to 256 bins (``int16(v*255)``) and the MI is
    ``H(X) + H(F) - H(X,F)`` of the 256x256 joint histogram. Equals CDDFuse's MI
    (``sklearn.metrics.mutual_info_score``) on the same integer images. Higher is better.
    """
    fq = _norm1(f)  # = _vifb_quantise(f)
    out = torch.zeros(f.shape[0], dtype=torch.float64, device=f.device)
    for x in (a, b):
        hx, hf, hxf = _mi_from_joint(_joint(_norm1(x), fq), log=torch.log)
        out = out + (hx + hf - hxf)
    return out


def nmi(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """NMI (MEFB, Hossny's revised MI): ``2 [MI(A,F)/(H(A)+H(F)) + MI(B,F)/(H(B)+H(F))]``.

    Images go through ``normalize1``; log2 entropies of the 256x256 joint histogram.
    Range [0, 2], higher is better.
    """
    fn = _norm1(f)
    out = torch.zeros(f.shape[0], dtype=torch.float64, device=f.device)
    for x in (a, b):
        hx, hf, hxf = _mi_from_joint(_joint(_norm1(x), fn))
        out = out + (hx + hf - hxf) / (hx + hf)
    return 2.0 * out


def tsallis_entropy(a: Tensor, b: Tensor, f: Tensor, q: float = 1.85, variant: str = "benchmark") -> Tensor:
    """TE (MEFB, Tsallis entropy), ``TE(A,F) + TE(B,F)`` with ``TE = (1 - S)/(1 - q)``.

    ``variant='benchmark'`` copies MEFB's transposed marginals:
    ``S = sum_{i,j} h(i,j)^q / (p_F(i) p_X(j))^(q-1)`` (h indexed (X value, F value)), which
    gives values in the thousands and is not comparable with other implementations.
    ``variant='corrected'`` uses ``(p_X(i) p_F(j))^(q-1)`` (the Tsallis mutual information).
    Terms whose marginal product is 0 are skipped. Higher is better (per the benchmark).
    """
    if variant not in ("benchmark", "corrected"):
        raise ValueError(f"unknown TE variant {variant!r}")
    fn = _norm1(f)
    out = torch.zeros(f.shape[0], dtype=torch.float64, device=f.device)
    for x in (a, b):
        h = _joint(_norm1(x), fn)
        h = h / h.sum(dim=(-2, -1), keepdim=True)
        px = h.sum(-1)  # marginal of X (index i)
        pf = h.sum(-2)  # marginal of F (index j)
        if variant == "benchmark":
            denom = pf[:, :, None] * px[:, None, :]
        else:
            denom = px[:, :, None] * pf[:, None, :]
        m = denom != 0
        terms = torch.where(m, h.pow(q) / torch.where(m, denom, torch.ones_like(denom)).pow(q - 1.0), torch.zeros_like(h))
        s = terms.sum(dim=(-2, -1))
        out = out + (1.0 - s) / (1.0 - q)
    return out


def qncie(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    """Qncie (MEFB): nonlinear correlation information entropy, ``1 - H_R``.

    ``NCC(X,Y) = (H(X)+H(Y)-H(X,Y))/log2(256)`` on ``normalize1``'d images; ``R`` is the 3x3
    NCC matrix of (A, B, F) with unit diagonal and eigenvalues ``r``;
    ``H_R = -sum (r/3) log2(r/3) / log2(256)``. Range [0, 1], higher is better.
    """
    an, bn, fn = _norm1(a), _norm1(b), _norm1(f)

    def ncc(x, y):
        hx, hy, hxy = _mi_from_joint(_joint(x, y))
        return (hx + hy - hxy) / _LOG2_256

    n_ab, n_af, n_bf = ncc(an, bn), ncc(an, fn), ncc(bn, fn)
    one = torch.ones_like(n_ab)
    R = torch.stack(
        [torch.stack([one, n_ab, n_af], -1), torch.stack([n_ab, one, n_bf], -1), torch.stack([n_af, n_bf, one], -1)], -2
    )
    r = torch.linalg.eigvalsh(R) / 3.0
    safe = torch.where(r > 0, r, torch.ones_like(r))
    hr = -(torch.where(r > 0, r, torch.zeros_like(r)) * torch.log2(safe)).sum(-1) / _LOG2_256
    return 1.0 - hr


# --------------------------------------------------------------------------- FMI
def _windows(x: Tensor, w: int) -> Tensor:
    """All ``w x w`` valid windows of ``(N,H,W)`` as ``(N, (H-w+1)(W-w+1), w*w)``, window
    elements in MATLAB column-major order (``sub(:)``), windows in row-major pixel order."""
    n = x.shape[0]
    cols = F.unfold(x[:, None], kernel_size=w)  # (N, w*w, L), elements row-major (r, c)
    idx = torch.arange(w * w, device=x.device).reshape(w, w).T.reshape(-1)  # column-major
    return cols[:, idx, :].transpose(1, 2).reshape(n, -1, w * w)


def _normalise_windows(x: Tensor) -> Tensor:
    """Per-window min-max to [0,1]; a constant window becomes ones. ``(K, L)``."""
    lo = x.amin(-1, keepdim=True)
    hi = x.amax(-1, keepdim=True)
    rng = hi - lo
    const = rng == 0
    return torch.where(const, torch.ones_like(x), (x - lo) / torch.where(const, torch.ones_like(rng), rng))


def _xlog2x_neg(p: Tensor) -> Tensor:
    """``-p log2|p|`` with 0 for p == 0 (MATLAB's ``real(-p .* log2(p))`` for p < 0)."""
    nz = p != 0
    return torch.where(nz, -p * torch.log2(torch.where(nz, p.abs(), torch.ones_like(p))), torch.zeros_like(p))


def _seqsum(x: Tensor) -> Tensor:
    """Sum over the last dim in sequential order (as MATLAB/Octave loops and short ``sum``s):
    the ``== 0`` tests of FMI depend on the exact rounding of these sums."""
    acc = x[..., 0]
    for k in range(1, x.shape[-1]):
        acc = acc + x[..., k]
    return acc


def _seqcumsum(x: Tensor) -> Tensor:
    out = torch.empty_like(x)
    acc = x[..., 0]
    out[..., 0] = acc
    for k in range(1, x.shape[-1]):
        acc = acc + x[..., k]
        out[..., k] = acc
    return out


def _window_pdf(xn: Tensor) -> Tensor:
    """``sub(:) / sum(sum(sub))`` for ``(K, w*w)`` column-major windows."""
    w = math.isqrt(xn.shape[-1])
    cols = _seqsum(xn.reshape(*xn.shape[:-1], w, w))  # per-column sums (sequential over rows)
    return xn / _seqsum(cols)[..., None]


def _window_fmi(xn: Tensor, fn: Tensor) -> Tensor:
    """Haghighat's fast-FMI of window pairs (no identity test).

    ``xn, fn``: ``(K, L)`` windows already normalised to [0,1] (column-major elements).
    Returns ``(K,)`` ``2 MI / (H_x + H_f)`` (0 when MI == 0). Sums feeding the reference's
    exact-zero tests are evaluated sequentially to reproduce its rounding.
    """
    L = xn.shape[-1]
    xp = _window_pdf(xn)
    fp = _window_pdf(fn)
    xc = _seqcumsum(xp)
    fc = _seqcumsum(fp)
    xt = xp - (_seqsum(xp) / L)[..., None]
    ft = fp - (_seqsum(fp) / L)[..., None]
    num = _seqsum(xt * ft)
    c = torch.where(num == 0, torch.zeros_like(num), num / torch.sqrt(_seqsum(xt * xt) * _seqsum(ft * ft)))
    i = torch.arange(1, L + 1, dtype=xn.dtype, device=xn.device)
    xsd = torch.sqrt(_seqsum((i * i) * xp) - _seqsum(i * xp) ** 2)
    fsd = torch.sqrt(_seqsum((i * i) * fp) - _seqsum(i * fp) ** 2)
    Fi = fc[:, :, None]  # f along rows (i)
    Aj = xc[:, None, :]  # x along columns (j)
    pos = (c >= 0)[:, None, None]
    s = Fi + Aj
    upper = 0.5 * (s - (Fi - Aj).abs())
    lower = 0.5 * (s - 1.0 + (s - 1.0).abs())
    bound = torch.where(pos, upper, lower)
    cov = (bound - Fi * Aj).sum(dim=(-2, -1))
    zero_phi = (c == 0) | (xsd == 0) | (fsd == 0)
    corr = cov / (fsd * xsd)
    phi = torch.where(zero_phi, torch.zeros_like(c), c / torch.where(zero_phi, torch.ones_like(corr), corr))
    # 2-D difference of the bound copula (rows/cols before the first treated as absent)
    dB = bound.clone()
    dB[:, 1:, :] = dB[:, 1:, :] - bound[:, :-1, :]
    dB[:, :, 1:] = dB[:, :, 1:] - bound[:, :, :-1]
    dB[:, 1:, 1:] = dB[:, 1:, 1:] + bound[:, :-1, :-1]
    ph = phi[:, None, None]
    jpdf = ph * dB + ((1.0 - ph) * fp[:, :, None]) * xp[:, None, :]
    hj = _xlog2x_neg(jpdf).sum(dim=(-2, -1))
    hx = _xlog2x_neg(xp).sum(-1)
    hf = _xlog2x_neg(fp).sum(-1)
    mi = hx + hf - hj
    return torch.where(mi == 0, torch.zeros_like(mi), 2.0 * mi / (hx + hf))


def _fmi_pairs(x: Tensor, f: Tensor, chunk: int = 32768) -> Tensor:
    """Window-pair FMI with the identity test (``x == f`` -> 1). ``(K,L),(K,L) -> (K,)``."""
    out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    for s in range(0, x.shape[0], chunk):
        xs, fs = x[s : s + chunk], f[s : s + chunk]
        val = _window_fmi(_normalise_windows(xs), _normalise_windows(fs))
        out[s : s + chunk] = torch.where((xs == fs).all(-1), torch.ones_like(val), val)
    return out


_BINARY_TABLES: dict = {}


def _binary_fmi_lookup(cx: Tensor, cf: Tensor) -> Tensor:
    """FMI (with identity test) of binary 3x3 window pairs given by their 9-bit codes
    (bit k = element k in column-major order). Values are memoised in a lazily filled
    ``(512, 512)`` table per device, so only pairs never seen before are computed."""
    key = str(cx.device)
    if key not in _BINARY_TABLES:
        _BINARY_TABLES[key] = torch.full((512 * 512,), float("nan"), dtype=torch.float64, device=cx.device)
    table = _BINARY_TABLES[key]
    flat = cx * 512 + cf
    uniq = torch.nonzero(torch.bincount(flat.reshape(-1), minlength=512 * 512)).squeeze(1)
    todo = uniq[torch.isnan(table[uniq])]
    if todo.numel():
        bitpos = torch.arange(9, device=cx.device)
        bits = lambda c: ((c[:, None] >> bitpos) & 1).to(torch.float64)  # noqa: E731
        table[todo] = _fmi_pairs(bits(todo // 512), bits(todo % 512))
    return table[flat]


def _binary_codes(e: Tensor) -> Tensor:
    """9-bit codes of all valid 3x3 windows of a binary map ``(N,H,W)`` -> ``(N, (H-2)(W-2))``;
    bit ``3c + r`` holds window element (r, c) (MATLAB column-major ``sub(:)`` order)."""
    e = e.to(torch.int32)
    H, W = e.shape[-2:]
    code = torch.zeros(e.shape[:-2] + (H - 2, W - 2), dtype=torch.int32, device=e.device)
    for c in range(3):
        for r in range(3):
            code += e[..., r : r + H - 2, c : c + W - 2] << (3 * c + r)
    return code.reshape(e.shape[0], -1).to(torch.long)


def _features(x: Tensor, feature: str) -> Tensor:
    if feature == "edge":
        return ml.edge_sobel(x)
    if feature in ("none", "pixel"):
        return x
    if feature == "gradient":
        return ml.gradient(x)[0]
    raise ValueError(f"unknown FMI feature {feature!r}; use 'edge', 'pixel' or 'gradient'")


def fmi(a: Tensor, b: Tensor, f: Tensor, feature: str = "edge", window: int = 3) -> Tensor:
    """FMI (MEFB, Haghighat's fast-FMI): mean over valid pixels of ``(FMI_AF + FMI_BF)/2``.

    ``feature``: 'edge' (MEFB default: MATLAB ``edge`` Sobel maps), 'pixel' (raw values,
    "FMI_pixel") or 'gradient' (x-gradient only, as the reference). ``window``: odd window
    size (MEFB: 3). Reproduces the reference quirk where the B-step identity test compares
    the raw B window with the F window normalised by the A step. Range [0, 1], higher is
    better. The binary 'edge' case with a 3x3 window uses an exact 512x512 lookup table.
    """
    if window % 2 != 1 or window < 1:
        raise ValueError("FMI window must be an odd positive integer")
    fa, fb, ff = (_features(t, feature) for t in (a, b, f))
    if feature == "edge" and window == 3:
        ca, cb, cf = _binary_codes(fa), _binary_codes(fb), _binary_codes(ff)
        s_af = _binary_fmi_lookup(ca, cf)
        # f normalised by the A step when a != f: constant windows (code 0 or 511) become ones
        const_f = (cf == 0) | (cf == 511)
        cf_b = torch.where((ca != cf) & const_f, torch.full_like(cf, 511), cf)
        s_bf = _binary_fmi_lookup(cb, cf_b)
    else:
        wa, wb, wf = (_windows(t, window) for t in (fa, fb, ff))  # (N, P, L)
        n, P, L = wf.shape
        wa, wb, wf = (t.reshape(n * P, L) for t in (wa, wb, wf))
        s_af = _fmi_pairs(wa, wf)
        eq_a = (wa == wf).all(-1, keepdim=True)
        wf_b = torch.where(eq_a, wf, _normalise_windows(wf))
        s_bf = _fmi_pairs(wb, wf_b)
        s_af, s_bf = s_af.reshape(n, P), s_bf.reshape(n, P)
    return ((s_af + s_bf) / 2.0).mean(-1)


__all__ = [
    "entropy",
    "cross_entropy",
    "mutual_information",
    "nmi",
    "tsallis_entropy",
    "qncie",
    "fmi",
]
