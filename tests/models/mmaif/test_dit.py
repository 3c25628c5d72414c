"""The MMAIF DiT: identity at initialisation, value residual, prompt masking, shapes, and the
``paper`` preset's size (spec §4, §11, §12)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unifuse.models.mmaif.blocks import ValueResidualAttention
from unifuse.models.mmaif.config import MMAIFConfig
from unifuse.models.mmaif.dit import MMAIFDiT, patchify, unpatchify
from unifuse.models.mmaif.text import TextBatch

TINY = MMAIFConfig.from_dict({"preset": "tiny"})


def _text(B=2, L=3, d=384, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[0, 2:] = False
    tok = torch.randn(B, L, d, generator=g) * mask[..., None]
    return TextBatch(tok, mask, tok.sum(1) / mask.sum(1, keepdim=True))


def _randomise_zero_inits(dit: MMAIFDiT, seed=0):
    torch.manual_seed(seed)
    for name, p in dit.named_parameters():
        if p.abs().max() == 0 and p.ndim >= 1 and "bias" not in name:
            nn.init.normal_(p, std=0.05)


def test_patchify_round_trip():
    x = torch.randn(2, 5, 6, 8)
    assert patchify(x, 2).shape == (2, 12, 20)
    torch.testing.assert_close(unpatchify(patchify(x, 2), 2, 5, (3, 4)), x, rtol=0, atol=0)


@pytest.mark.parametrize("hw", [(8, 8), (6, 10), (4, 14)])
def test_shapes_and_zero_output_at_init(hw):
    z = TINY.tokenizer_kwargs["f"] ** 2 * 3
    za, zb = torch.randn(2, z, *hw), torch.randn(2, z, *hw)
    reg = MMAIFDiT(TINY, z, 384, "reg")
    out = reg(None, za, zb, _text())
    assert out.out.shape == za.shape and out.out.abs().max() == 0  # final projection zero-initialised
    assert out.load.shape == (TINY.depth, 4) and torch.allclose(out.load.sum(1), torch.ones(TINY.depth))
    flow = MMAIFDiT(TINY, z, 384, "flow")
    assert flow(torch.randn_like(za), za, zb, _text(), torch.rand(2)).out.shape == za.shape


def test_every_block_is_the_identity_at_init():
    z = 48
    dit = MMAIFDiT(TINY, z, 384, "flow")
    x = torch.randn(2, 12, TINY.hidden)
    c = torch.randn(2, 12, TINY.hidden)
    pe = dit.pos(3, 4)
    assert pe.abs().max() == 0  # per-block PE starts at 0
    from unifuse.models.layers import rope_2d_angles

    ang = rope_2d_angles(3, 4, TINY.head_dim, TINY.rope_base)
    tokens = dit.text_norm(dit.text_proj(_text().tokens))
    v = None
    for blk in dit.blocks:
        y, v, bal, _ = blk(x, c, pe, (3, 4), ang, tokens, _text().mask, v)
        torch.testing.assert_close(y, x, rtol=0, atol=0)
    _randomise_zero_inits(dit)  # the identity comes from the zero inits, not from a dead block
    y, *_ = dit.blocks[0](x, c, dit.pos(3, 4), (3, 4), ang, tokens, _text().mask, None)
    assert (y - x).abs().max() > 1e-3


def test_value_residual_with_zero_eta_is_plain_attention():
    torch.manual_seed(0)
    attn = ValueResidualAttention(32, 4)
    from unifuse.models.layers import rope_2d_angles

    h, ang = torch.randn(2, 6, 32), rope_2d_angles(2, 3, 8)
    v_prev = torch.randn(2, 4, 6, 8)
    plain, v0 = attn(h, ang)
    mixed, v1 = attn(h, ang, v_prev=v_prev)
    torch.testing.assert_close(mixed, plain)
    torch.testing.assert_close(v1, v0)
    with torch.no_grad():
        attn.eta.fill_(0.5)
    _, v2 = attn(h, ang, v_prev=v_prev)
    torch.testing.assert_close(v2, 0.5 * v0 + 0.5 * v_prev)  # the mixed V is what the next layer gets
    assert not torch.allclose(attn(h, ang, v_prev=v_prev)[0], plain)


def test_padded_prompt_positions_do_not_matter_but_real_ones_do():
    dit = MMAIFDiT(TINY, 48, 384, "reg")
    _randomise_zero_inits(dit)
    za, zb = torch.randn(2, 48, 4, 6), torch.randn(2, 48, 4, 6)
    tb = _text()
    base = dit(None, za, zb, tb).out
    junk = tb.tokens.clone()
    junk[0, 2:] = 100 * torch.randn_like(junk[0, 2:])  # only sample 0's padded slot changes
    torch.testing.assert_close(dit(None, za, zb, TextBatch(junk, tb.mask, tb.pooled)).out, base)
    real = tb.tokens.clone()
    real[0, 0] += 1.0  # a real token of sample 0 changes only sample 0
    out = dit(None, za, zb, TextBatch(real, tb.mask, tb.pooled)).out
    assert (out[0] - base[0]).abs().max() > 1e-4
    torch.testing.assert_close(out[1], base[1])


def _count(m):
    return sum(p.numel() for p in m.parameters())


def _active(dit: MMAIFDiT) -> int:
    per_expert = _count(dit.blocks[0].moe.experts[0])
    n_idle = dit.cfg.n_experts - dit.cfg.top_k
    return _count(dit) - len(dit.blocks) * n_idle * per_expert


def test_paper_preset_size():
    cfg = MMAIFConfig.from_dict({"preset": "paper"})
    with torch.device("meta"):
        dit = MMAIFDiT(cfg, 16, cfg.d_text, "flow")
    # spec §4.1: 281.5 M with NAFBlock, SwiGLU hidden 1536 and d_text 768 (paper: 282 M)
    assert _count(dit) == 281_531_344
    blk = dit.blocks[0]
    assert _count(blk.naf) == 2_341_440 and _count(blk.ada) == 519_680  # spec: ≈2.3 M and ≈0.52 M per block
    assert _count(blk.moe) == 5 * 3 * 576 * 1536 + 576 * 4
    assert _active(dit) == 281_531_344 - 16 * 2 * 3 * 576 * 1536 == 196_596_688  # spec ≈196 M active (paper ≈185 M)
    small = MMAIFConfig.from_dict({"preset": "small"})
    with torch.device("meta"):
        assert round(_count(MMAIFDiT(small, 16, small.d_text, "flow")) / 1e6, 1) == 9.9  # spec: ≈9.9 M
        assert round(_count(MMAIFDiT(TINY, 16, TINY.d_text, "flow")) / 1e6, 1) == 3.1  # spec: ≈3.0 M


def test_paper_preset_runs_one_forward():
    """Real memory (1.1 GB fp32); small random weights instead of the (slow) Xavier pass."""
    cfg = MMAIFConfig.from_dict({"preset": "paper"})
    with torch.device("meta"):
        dit = MMAIFDiT(cfg, 16, cfg.d_text, "flow").eval()
    dit.to_empty(device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in dit.parameters():
            p.uniform_(-0.02, 0.02, generator=g)
    za, zb = torch.randn(1, 16, 4, 6), torch.randn(1, 16, 4, 6)
    text = TextBatch(torch.randn(1, 5, 768), torch.ones(1, 5, dtype=torch.bool), torch.randn(1, 768))
    with torch.no_grad():
        out = dit(torch.randn(1, 16, 4, 6), za, zb, text, torch.tensor([0.3]))
    assert out.out.shape == (1, 16, 4, 6) and torch.isfinite(out.out).all() and out.out.abs().max() > 0
    assert out.load.shape == (16, 4)
