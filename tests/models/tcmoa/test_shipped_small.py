"""The shipped ``tcmoa_small`` weights (CPU-trained, docs/tcmoa_model_card.md): they load by
default for ``tcmoa_small`` only, fuse a small pair, and are never the default of ``fuse``."""

from __future__ import annotations

import hashlib
import inspect
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import unifuse
from unifuse.errors import ConfigError
from unifuse.models import MODELS, _ensure_builtin
from unifuse.models.tcmoa.checkpoint import shipped_weights_path

WEIGHTS = Path(unifuse.__file__).resolve().parent / "weights"


def _pair(h: int = 60, w: int = 84) -> tuple[np.ndarray, np.ndarray]:
    """A colour 'visible' image (smooth gradients + a bright square) and a gray 'infrared' one
    (a warm blob), float in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vis = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 7.0)], axis=-1)
    vis[10:25, 15:35] = 0.9
    ir = np.exp(-(((xx - 55) / 12.0) ** 2 + ((yy - 35) / 10.0) ** 2)).astype(np.float32)
    return np.clip(vis, 0, 1), ir


def test_shipped_file_and_card_agree():
    path = shipped_weights_path("tcmoa_small")
    assert path == WEIGHTS / "tcmoa_small.safetensors"
    card = json.loads((WEIGHTS / "tcmoa_small.json").read_text())
    assert card["weights"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.stat().st_size < 30 * 2**20
    assert card["stage0"]["step"] > 0 and card["stage1"]["step"] > 0


def test_only_the_small_entry_has_default_weights():
    _ensure_builtin()
    assert MODELS.get("tcmoa_small").factory.model_class.default_weights() is not None
    for name in ("tcmoa", "tcmoa_base", "tcmoa_tiny"):
        assert MODELS.get(name).factory.model_class.default_weights() is None, name
    assert shipped_weights_path() is None  # the large preset (official checkpoint) never ships


def test_load_model_uses_the_shipped_weights():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "randomly initialised" / missing-key warning
        net = unifuse.load_model("tcmoa_small")
    assert not net.training and net.config.embed_dim == 192
    sd = load_file(str(shipped_weights_path("tcmoa_small")))
    own = net.state_dict()
    assert set(sd) == set(own)
    assert all(torch.equal(own[k], v) for k, v in sd.items())
    # the same preset built under another entry does not pick them up (fresh weights)
    fresh = unifuse.create_model("tcmoa", preset="small").state_dict()
    assert any(not torch.equal(fresh[k], own[k]) for k in own)


def test_fuses_a_small_pair_through_the_public_api():
    vis, ir = _pair()
    out = unifuse.fuse(vis, ir, model="tcmoa_small", task="ivf", output="numpy")
    assert out.shape == vis.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert out.std() > 0.02  # an image, not a constant
    # both sources show in the result: the bright square of the visible image, the infrared blob
    lum = out.mean(axis=-1)
    assert lum[12:23, 17:33].mean() > lum[40:55, 5:12].mean()
    assert np.corrcoef(lum.ravel(), ir.ravel())[0, 1] > 0


def test_never_the_default_and_large_still_refuses():
    from unifuse.cli.main import build_parser
    from unifuse.inference.fuse import fuse

    assert inspect.signature(fuse).parameters["model"].default == "tita"
    assert build_parser().parse_args(["fuse", "a.png", "b.png", "-o", "f.png"]).model == "tita"
    vis, ir = _pair(32, 32)
    with pytest.raises(ConfigError, match="no trained weights ship for model 'tcmoa'"):
        unifuse.fuse(vis, ir, model="tcmoa", task="ivf")


def test_demo_finds_them_only_when_asked_for_tcmoa_small():
    from unifuse.cli.demo import tcmoa_weights

    assert tcmoa_weights(None) is None  # default --tcmoa-model tcmoa (large): none ship
    assert tcmoa_weights(None, "tcmoa_small") == shipped_weights_path("tcmoa_small")
