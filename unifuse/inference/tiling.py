"""Tiled inference for images larger than memory allows.

The (padded) image is covered by overlapping ``tile × tile`` windows; each tile is fused on
its own and the results are blended with weights that ramp linearly across the overlaps,
so seams vanish. Peak memory is set by the tile size (plus the image-sized output
accumulators), not by the image size.

Models with a global operation (TITA's OAF weight generator pools the whole feature map)
declare ``uses_global_context`` and provide ``context_features(a, b)``; the tiler then runs a
first pass that averages those features over a partition of the image (each pixel counted
once) and gives the same image-wide context to every tile in the second pass. This makes
tiled and untiled outputs agree up to the receptive-field effects at tile borders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..models.tita.network import pad_to_multiple


@dataclass(frozen=True)
class TileSpec:
    """Tile size and overlap in pixels (rounded up to the model's padding multiple)."""

    tile: int = 512
    overlap: int = 64

    def __post_init__(self) -> None:
        if self.tile < 16:
            raise ConfigError(f"tile size must be >= 16 pixels, got {self.tile}")
        if not 0 <= self.overlap < self.tile // 2 + 1:
            raise ConfigError(f"tile overlap must be in [0, tile/2], got {self.overlap} for tile {self.tile}")


def _starts(n: int, tile: int, overlap: int) -> list[int]:
    if n <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


def _cuts(starts: list[int], tile: int, n: int) -> list[tuple[int, int]]:
    """Partition ``[0, n)`` into one core interval per tile (midpoints of the overlaps)."""
    bounds = [0] + [(starts[i + 1] + starts[i] + tile) // 2 for i in range(len(starts) - 1)] + [n]
    return [(bounds[i], bounds[i + 1]) for i in range(len(starts))]


def _ramp(length: int, start: int, prev_end: int | None, next_start: int | None) -> torch.Tensor:
    """1-D blend weight of a tile covering ``[start, start+length)``: linear ramps over overlaps."""
    w = torch.ones(length)
    pos = torch.arange(length, dtype=torch.float32) + 0.5
    if prev_end is not None and prev_end > start:  # overlap with the previous tile on the left
        ov = prev_end - start
        w = torch.minimum(w, pos / ov)
    if next_start is not None and next_start < start + length:
        ov = start + length - next_start
        w = torch.minimum(w, (length - pos) / ov)
    return w


def _round_up(x: int, m: int) -> int:
    return -(-x // m) * m


@torch.no_grad()
def tiled_forward(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor, spec: TileSpec = TileSpec(),
                  progress: bool = False, **model_options: Any) -> torch.Tensor:
    """Fuse ``a``, ``b`` (``(N, C, H, W)`` float32) tile by tile; returns ``(N, C_out, H, W)``.

    Falls back to a single forward pass when the image fits in one tile. ``model_options``
    (e.g. ``task="mef"``) are passed to every call of ``model``.
    """
    N, _, H, W = a.shape
    m = int(getattr(model, "pad_multiple", 1))
    tile, overlap = _round_up(spec.tile, m), _round_up(spec.overlap, m) if spec.overlap else 0
    ap, bp = pad_to_multiple(a, m), pad_to_multiple(b, m)
    Hp, Wp = ap.shape[-2:]
    if Hp <= tile and Wp <= tile:
        return model(a, b, **model_options)
    ys, xs = _starts(Hp, tile, overlap), _starts(Wp, tile, overlap)
    th, tw = min(tile, Hp), min(tile, Wp)
    boxes = [(y, x) for y in ys for x in xs]
    n_pass = 2 if getattr(model, "uses_global_context", False) else 1
    bar = tqdm(total=len(boxes) * n_pass, desc="tiles", unit="tile", disable=not progress, leave=False)

    context = None
    if n_pass == 2:
        cy, cx = dict(zip(ys, _cuts(ys, th, Hp))), dict(zip(xs, _cuts(xs, tw, Wp)))
        total = None
        for y, x in boxes:
            feats = model.context_features(ap[..., y:y + th, x:x + tw], bp[..., y:y + th, x:x + tw], **model_options)
            (y0, y1), (x0, x1) = cy[y], cx[x]
            s = feats[..., y0 - y:y1 - y, x0 - x:x1 - x].sum(dim=(2, 3), dtype=torch.float64)
            total = s if total is None else total + s
            bar.update()
        context = (total / (Hp * Wp)).float()

    out = weight = None
    wy = {y: _ramp(th, y, ys[i - 1] + th if i else None, ys[i + 1] if i + 1 < len(ys) else None) for i, y in enumerate(ys)}
    wx = {x: _ramp(tw, x, xs[i - 1] + tw if i else None, xs[i + 1] if i + 1 < len(xs) else None) for i, x in enumerate(xs)}
    for y, x in boxes:
        kw = {**model_options, **({"context": context} if context is not None else {})}
        o = model(ap[..., y:y + th, x:x + tw], bp[..., y:y + th, x:x + tw], **kw).float()
        if out is None:
            out = torch.zeros(N, o.shape[1], Hp, Wp, dtype=torch.float32, device=o.device)
            weight = torch.zeros(1, 1, Hp, Wp, dtype=torch.float32, device=o.device)
        w = (wy[y][:, None] * wx[x][None, :]).to(o.device)
        out[..., y:y + th, x:x + tw] += o * w
        weight[..., y:y + th, x:x + tw] += w
        bar.update()
    bar.close()
    return (out / weight)[..., :H, :W]
