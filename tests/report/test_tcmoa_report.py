"""TC-MoA pictures: prompt heat maps, adapter-usage histograms, the ``tcmoa-maps`` command."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from unifuse.cli.main import main
from unifuse.models.tcmoa import TCMoA, preset_config
from unifuse.models.tcmoa.analysis import adapter_usage, prompt_maps
from unifuse.report.tcmoa import colourise, write_tcmoa_maps


def _net():
    torch.manual_seed(0)
    net = TCMoA(preset_config("tiny")).eval()
    with torch.no_grad():
        for m in net.moa_modules().values():
            m.MoA.w_gate.normal_(0, 0.3)
    return net


def test_maps_and_usage_values():
    net = _net()
    a, b = torch.rand(1, 3, 64, 96), torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        out = net.forward_features(net.normalize(a), net.normalize(b), 1)
    maps = prompt_maps(out)
    assert set(maps) == {f"{m}/{s}" for m in ("enc0", "enc1", "dec0") for s in "xy"}
    assert maps["enc1/y"].shape == (1, 8, 12)
    assert torch.equal(maps["dec0/x"].flatten(), out.modules["dec0"].prompt_x.flatten())
    usage = adapter_usage(net, a, b)
    for t in "012":
        for m in ("enc0", "enc1", "dec0"):
            u = usage[t][m]
            assert sum(u["load"]) >= 96 and abs(sum(u["share"]) - 1) < 1e-5
    assert usage["0"]["enc0"] != usage["2"]["enc0"]  # different routers route differently


def test_colourise_ends():
    c = colourise(np.array([[0.0, 1.0]]))
    assert tuple(c[0, 0]) == (68, 1, 84) and tuple(c[0, 1]) == (253, 231, 37)


def test_write_maps(tmp_path):
    net = _net()
    paths = write_tcmoa_maps(net, torch.rand(1, 3, 64, 64), torch.rand(1, 1, 64, 64), tmp_path, task="mef")
    names = {p.name for p in paths}
    assert {"prompts_mef_enc0_x.png", "adapters_dec0.png", "index.html", "adapter_usage.json"} <= names
    assert Image.open(tmp_path / "prompts_mef_enc0_x.png").size == (224, 224)
    assert "adapters_enc1.png" in (tmp_path / "index.html").read_text()
    assert set(json.loads((tmp_path / "adapter_usage.json").read_text())) == {"0", "1", "2"}


def test_command(tmp_path, capsys):
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 50, 3)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    Image.fromarray((rng.random((40, 50)) * 255).astype(np.uint8)).save(tmp_path / "b.png")
    out = tmp_path / "maps"
    assert main(["tcmoa-maps", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out), "--model", "tcmoa_tiny",
                 "--weights", "random", "--task", "0.2,0.5,0.3", "--beta", "0.1"]) == 0
    assert (out / "index.html").is_file() and (out / "adapters_enc0.png").is_file()
    assert main(["tcmoa-maps", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out), "--model", "tita",
                 "--weights", "random"]) == 1
    assert "must be a TC-MoA model" in capsys.readouterr().err
