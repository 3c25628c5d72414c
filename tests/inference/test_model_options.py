"""Model forward options (``call_options``): passed through by ``fuse``/``Fuser``/tiling and the CLI, refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import unifuse
from unifuse.cli.main import main
from unifuse.errors import ConfigError
from unifuse.inference.tiling import TileSpec, tiled_forward
from unifuse.models import MODELS, register_model


class Gain(nn.Module):
    """Mean of the sources times ``gain`` (a forward option)."""

    input_mode = "luma"
    trainable = False
    pad_multiple = 8
    call_options = ("gain",)
    call_option_flags = {"gain": {"type": float, "help": "output gain"}}

    def forward(self, a, b, gain=1.0):
        return (a + b) / 2 * gain


@pytest.fixture(scope="module")
def gain_model():
    def factory(**cfg):
        return Gain()

    factory.model_class = Gain
    register_model("gain_test", description="test model with a forward option")(factory)
    yield "gain_test"
    del MODELS._entries["gain_test"]  # leave the registry as other tests expect it


def test_fuse_passes_options(gain_model):
    a, b = np.full((8, 8), 100, np.uint8), np.full((8, 8), 50, np.uint8)
    out = unifuse.fuse(a, b, model=gain_model, output="numpy", gain=2.0)
    np.testing.assert_allclose(out, 150 / 255, atol=1e-6)
    np.testing.assert_allclose(unifuse.fuse(a, b, model=gain_model, output="numpy"), 75 / 255, atol=1e-6)


def test_options_a_model_does_not_take_are_refused(gain_model):
    a = np.zeros((8, 8), np.float32)
    with pytest.raises(ConfigError, match=r"'average' does not take --gain \(its options: none\)"):
        unifuse.fuse(a, a, model="average", gain=2.0)
    with pytest.raises(ConfigError, match=r"does not take --prompt \(its options: --gain\)"):
        unifuse.fuse(a, a, model=gain_model, prompt="x")


def test_tiled_forward_passes_options():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 1, 40, 56, generator=g), torch.rand(1, 1, 40, 56, generator=g)
    torch.testing.assert_close(tiled_forward(Gain(), a, b, TileSpec(16, 8), gain=3.0), (a + b) / 2 * 3.0)


def test_cli_flag_from_the_model_class(gain_model, tmp_path, capsys):
    for name, v in (("a.png", 100), ("b.png", 50)):
        Image.fromarray(np.full((12, 16), v, np.uint8)).save(tmp_path / name)
    out = tmp_path / "f.png"
    assert main(["fuse", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out), "--model", gain_model,
                 "--gain", "2"]) == 0
    assert np.asarray(Image.open(out).convert("L")).mean() == pytest.approx(150, abs=1)
    assert main(["fuse", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out), "--model", "max",
                 "--gain", "2"]) == 1
    assert "does not take --gain" in capsys.readouterr().err
