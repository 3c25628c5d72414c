"""`unifuse fuse --model mmaif` (pair and folder mode, prompts, modes, seeds, refusals) and
`unifuse mmaif-prompts`, with tiny random weights saved to a temporary file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import unifuse
from unifuse.cli.main import main
from unifuse.models.mmaif import save_mmaif_weights
from unifuse.models.mmaif.text import TEXT_ENCODERS, PromptCache, TextBatch, TextEncoder, pad_sequences, register_text_encoder


def _img(path, shape=(20, 27, 3), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random(shape) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    m = unifuse.load_model("mmaif", weights="random", preset="tiny")
    for d in m.dits.values():
        for name, p in d.named_parameters():
            if p.abs().max() == 0 and "bias" not in name:
                torch.nn.init.normal_(p, std=0.02)
    return save_mmaif_weights(m, tmp_path_factory.mktemp("w") / "tiny.safetensors")


def test_fuse_pair_with_prompt_mode_steps_seed(tmp_path, weights):
    a, b = _img(tmp_path / "a.png"), _img(tmp_path / "b.png", seed=1)
    outs = {}
    for name, extra in {"reg": ["--prompt", "remove the haze"], "flow": ["--mode", "flow", "--steps", "2", "--seed", "3"],
                        "flow2": ["--mode", "flow", "--steps", "2", "--seed", "3"], "flow4": ["--mode", "flow", "--steps", "2", "--seed", "4"]}.items():
        out = tmp_path / f"{name}.png"
        assert main(["fuse", str(a), str(b), "-o", str(out), "--model", "mmaif", "--weights", str(weights), *extra]) == 0
        im = Image.open(out)
        assert im.size == (27, 20) and im.mode == "RGB"  # the input size, not the padded one
        outs[name] = np.asarray(im)
    assert np.array_equal(outs["flow"], outs["flow2"]) and not np.array_equal(outs["flow"], outs["flow4"])
    assert not np.array_equal(outs["reg"], outs["flow"])


def test_shipped_weights_fuse_from_the_command_line_in_both_modes(tmp_path):
    from unifuse.models.mmaif.checkpoint import shipped_weights_path

    if shipped_weights_path() is None:
        pytest.skip("this build ships no MMAIF weights")
    a, b = _img(tmp_path / "a.png"), _img(tmp_path / "b.png", seed=1)
    outs = {}
    for mode in ("reg", "flow"):
        out = tmp_path / f"{mode}.png"
        assert main(["fuse", str(a), str(b), "-o", str(out), "--model", "mmaif", "--mode", mode,
                     "--prompt", "remove the haze and brighten it", "--threads", "1"]) == 0
        outs[mode] = np.asarray(Image.open(out))
        assert outs[mode].shape == (20, 27, 3)
    assert not np.array_equal(outs["reg"], outs["flow"])


def test_fuse_folder_mode(tmp_path, weights):
    da, db, out = tmp_path / "A", tmp_path / "B", tmp_path / "out"
    da.mkdir(), db.mkdir()
    for i in range(2):
        _img(da / f"{i}.png", seed=i), _img(db / f"{i}.png", seed=10 + i)
    assert main(["fuse", "--a", str(da), "--b", str(db), "-o", str(out), "--model", "mmaif", "--weights", str(weights),
                 "--prompt", "fuse"]) == 0
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".png") == ["0.png", "1.png"]


def test_refusals_are_one_line(tmp_path, weights, capsys, monkeypatch):
    from unifuse.models.mmaif import checkpoint

    a, b = _img(tmp_path / "a.png"), _img(tmp_path / "b.png", seed=1)
    o = str(tmp_path / "o.png")
    with monkeypatch.context() as mp:
        mp.setattr(checkpoint, "_WEIGHTS_DIR", tmp_path / "none")  # a build without shipped weights
        assert main(["fuse", str(a), str(b), "-o", o, "--model", "mmaif"]) != 0
    assert "no trained weights ship for model 'mmaif'" in capsys.readouterr().err
    assert main(["fuse", str(a), str(b), "-o", o, "--model", "laplacian", "--prompt", "x"]) != 0
    assert "does not take --prompt" in capsys.readouterr().err
    assert main(["fuse", str(a), str(b), "-o", o, "--model", "mmaif", "--weights", str(weights), "--steps", "0", "--mode", "flow"]) != 0
    err = capsys.readouterr().err
    assert "--steps must be >= 1" in err and "Traceback" not in err


class FakeFrozen(TextEncoder):
    """A frozen encoder that counts the prompts it really encodes."""

    dim = 4

    def __init__(self, cache=None, **_):
        super().__init__()
        self.cache, self.encoded = (cache if cache is not None else PromptCache()), []

    def encode(self, prompts):
        for p in prompts:
            if p not in self.cache:
                self.encoded.append(p)
                self.cache.put(p, torch.full((len(p.split()), 4), float(len(p))), torch.full((4,), float(len(p))))
        toks, mask = pad_sequences([self.cache.get(p)[0] if p else torch.zeros(0, 4) for p in prompts], 4, 77)
        return TextBatch(toks, mask, toks.sum(1))


def test_mmaif_prompts_precomputes_every_template_prompt(tmp_path, capsys):
    from unifuse.data.degrade import all_prompts

    register_text_encoder("fake_frozen_test")(FakeFrozen)
    try:
        extra = tmp_path / "extra.txt"
        extra.write_text("make it pop\n\n")
        out = tmp_path / "cache.safetensors"
        assert main(["mmaif-prompts", "-o", str(out), "--encoder", "fake_frozen_test", "--prompts", str(extra)]) == 0
        cache = PromptCache(out)
        expected = set(all_prompts()) - {""} | {"make it pop"}
        assert set(cache.prompts()) == expected and len(expected) > 100
        p = "make it pop"
        assert torch.equal(cache.get(p)[1], torch.full((4,), float(len(p))))
        assert main(["mmaif-prompts", "-o", str(out), "--encoder", "fake_frozen_test"]) == 0  # nothing new
        assert "(0 new" in capsys.readouterr().out
        assert main(["mmaif-prompts", "-o", str(out), "--encoder", "hash"]) != 0
        assert "trains with the DiT" in capsys.readouterr().err
    finally:
        del TEXT_ENCODERS._entries["fake_frozen_test"]
