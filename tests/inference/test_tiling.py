"""Tiled inference agrees with whole-image inference and covers every pixel once."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import unifuse
from unifuse.errors import ConfigError
from unifuse.inference.tiling import TileSpec, _cuts, _starts, tiled_forward


def psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    rng = (ref.max() - ref.min()).item()
    return 10 * math.log10(rng**2 / ((x - ref) ** 2).mean().item())


def test_tile_geometry_partitions_the_image():
    for n, tile, ov in [(100, 32, 8), (64, 64, 16), (200, 48, 16), (17, 16, 0)]:
        starts = _starts(n, tile, ov)
        assert starts[0] == 0 and starts[-1] + min(tile, n) == n
        assert all(b - a <= tile - ov for a, b in zip(starts, starts[1:]))
        cuts = _cuts(starts, min(tile, n), n)
        assert cuts[0][0] == 0 and cuts[-1][1] == n
        assert all(c0[1] == c1[0] for c0, c1 in zip(cuts, cuts[1:]))
        assert all(s <= c[0] and c[1] <= s + tile for s, c in zip(starts, cuts))


def test_tiled_matches_untiled(reference_dir):
    case = torch.load(reference_dir / "tita_official_case1.pt", weights_only=False)
    model = unifuse.load_model("tita", weights=case["state_dict"])
    a = F.interpolate(case["a"], size=(200, 264), mode="bilinear")
    b = F.interpolate(case["b"], size=(200, 264), mode="bilinear")
    with torch.no_grad():
        full = model(a, b)
        tiled = tiled_forward(model, a, b, TileSpec(128, 32))
    assert tiled.shape == full.shape
    assert psnr(tiled, full) >= 45.0


def test_tiled_context_is_the_image_mean():
    """With one tile's worth of overlap everywhere the pooled context equals the global pool."""
    torch.manual_seed(0)
    model = unifuse.create_model("tita", embed_dim=12, num_heads=2, depths_ex=1, depths_fusion=(2,), depths_re=1).eval()
    a, b = torch.rand(1, 1, 48, 40), torch.rand(1, 1, 48, 40)
    with torch.no_grad():
        feats = model.context_features(a, b)
        full_pool = feats.mean(dim=(2, 3))
        # a tile covering the whole image reproduces the untiled output exactly
        out_ctx = model(a, b, context=full_pool)
        out = model(a, b)
    assert torch.allclose(out, out_ctx, atol=1e-6)


def test_small_image_is_not_tiled():
    model = unifuse.create_model("tita", embed_dim=12, num_heads=2, depths_ex=1, depths_fusion=(2,), depths_re=1).eval()
    a, b = torch.rand(1, 1, 20, 20), torch.rand(1, 1, 20, 20)
    with torch.no_grad():
        assert torch.equal(tiled_forward(model, a, b, TileSpec(32, 8)), model(a, b))


def test_tile_spec_validation():
    with pytest.raises(ConfigError):
        TileSpec(8, 0)
    with pytest.raises(ConfigError):
        TileSpec(64, 40)
