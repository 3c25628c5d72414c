"""TC-MoA from the command line and in the demo / report plumbing (tiny preset, saved random weights)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

import unifuse
from unifuse.cli.demo import _choose_models, tcmoa_weights
from unifuse.cli.main import main
from unifuse.inference.fuse import Fuser
from unifuse.models.tcmoa import save_tcmoa_weights
from unifuse.report.pairs import with_task


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    net = unifuse.load_model("tcmoa_tiny", weights="random")
    with torch.no_grad():
        for m in net.moa_modules().values():
            m.MoA.w_gate.normal_(0, 0.3)
    return str(save_tcmoa_weights(net, tmp_path_factory.mktemp("w") / "tiny.safetensors"))


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((50, 70, 3)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    Image.fromarray((rng.random((50, 70)) * 255).astype(np.uint8)).save(tmp_path / "b.png")
    return tmp_path / "a.png", tmp_path / "b.png"


def test_fuse_with_task_and_sliders(tiny_weights, pair, tmp_path):
    a, b = pair
    outs = {}
    for name, extra in {"mef": ["--task", "mef"], "ivf": ["--task", "ivf"], "slid": ["--task", "mef", "--alpha", "0", "--beta", "0.2"],
                        "mix": ["--task", "0.2,0.5,0.3", "--prompt-where", "decoder", "--beta", "0.1"]}.items():
        out = tmp_path / f"{name}.png"
        assert main(["fuse", str(a), str(b), "-o", str(out), "--model", "tcmoa_tiny", "--weights", tiny_weights, *extra]) == 0
        img = Image.open(out)
        assert img.size == (70, 50) and img.mode == "RGB"
        outs[name] = np.asarray(img)
    assert not np.array_equal(outs["mef"], outs["ivf"]) and not np.array_equal(outs["mef"], outs["slid"])
    direct = unifuse.fuse(str(a), str(b), model="tcmoa_tiny", weights=tiny_weights, task="mef", output="numpy")
    assert np.array_equal(np.asarray(unifuse.fuse(str(a), str(b), model="tcmoa_tiny", weights=tiny_weights, task="mef")), outs["mef"])
    assert direct.shape == (50, 70, 3)


def test_folder_mode_and_gray(tiny_weights, pair, tmp_path):
    a, b = pair
    (tmp_path / "A").mkdir(), (tmp_path / "B").mkdir()
    Image.open(a).save(tmp_path / "A" / "x.png")
    Image.open(b).save(tmp_path / "B" / "x.png")
    assert main(["fuse", "--a", str(tmp_path / "A"), "--b", str(tmp_path / "B"), "-o", str(tmp_path / "O"),
                 "--model", "tcmoa_tiny", "--weights", tiny_weights, "--task", "mff", "--color", "gray"]) == 0
    assert Image.open(tmp_path / "O" / "x.png").mode == "L"


def test_errors(tiny_weights, pair, tmp_path, capsys):
    a, b = pair
    out = str(tmp_path / "o.png")
    assert main(["fuse", str(a), str(b), "-o", out, "--model", "tcmoa_tiny", "--weights", tiny_weights, "--task", "fog"]) == 1
    assert "unknown task 'fog'" in capsys.readouterr().err
    assert main(["fuse", str(a), str(b), "-o", out, "--model", "tcmoa"]) == 1
    assert "no trained weights ship for model 'tcmoa'" in capsys.readouterr().err
    assert main(["fuse", str(a), str(b), "-o", out, "--model", "tcmoa", "--weights", tiny_weights]) == 1
    assert "different config" in capsys.readouterr().err  # large preset vs tiny weights


def test_pairs_are_routed_by_their_task(tiny_weights, pair):
    a, b = (np.asarray(Image.open(p), np.float32) / 255 for p in pair)
    fuser = Fuser("tcmoa_tiny", weights=tiny_weights)
    routed = with_task(fuser, "MEF")
    assert routed.model_options == {"task": "mef"} and fuser.model_options == {}
    assert np.array_equal(routed.fuse_arrays(a, b)[0], Fuser("tcmoa_tiny", weights=tiny_weights, model_options={"task": "mef"}).fuse_arrays(a, b)[0])
    assert with_task(Fuser("average"), "MEF").model_options == {}  # models without a task option are left alone


def test_demo_skips_tcmoa_without_weights(tiny_weights, capsys):
    assert tcmoa_weights(None) is None  # no TC-MoA weights ship
    args = argparse.Namespace(weights="random", tcmoa_weights=None, tcmoa_model="tcmoa", models=None)
    names, _ = _choose_models(args)
    assert not any(n.startswith("tcmoa") for n in names)
    assert "TC-MoA skipped" in capsys.readouterr().err
    names, _ = _choose_models(argparse.Namespace(weights="random", tcmoa_weights=tiny_weights, tcmoa_model="tcmoa_tiny", models=None))
    assert "tcmoa_tiny" in names
