"""scripts/robustness_report.py machinery (unifuse.report.robustness) on tiny synthetic folders."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from PIL import Image

from unifuse.data.degrade import degrade_pair, derive_seed
from unifuse.inference.fuse import Fuser
from unifuse.metrics import evaluate
from unifuse.report.robustness import (RobustnessConfig, _to_t, _to_u8, build_report, load_u8, models_with_weights,
                                       relative_change)


def _write(folder, name, arr):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(folder / name)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("robdata")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64] / 48
    for k in range(2):
        base = 0.5 + 0.4 * np.sin(6 * xx + 3 * yy + k)
        vi = (np.stack([base, base * 0.9, base * 0.8], -1) * 255).astype(np.uint8)
        ir = (np.clip(1 - base + rng.normal(0, 0.03, base.shape), 0, 1) * 255).astype(np.uint8)
        for sub in ("ivf/tno", "vifb_dev"):
            _write(root / sub / "vi", f"p{k}.png", vi)
            _write(root / sub / "ir", f"p{k}.png", ir)
    (root / "vifb_dev" / "fused").mkdir()
    return root


def test_models_with_weights_lists_shipped_and_training_free_not_ablations():
    names = models_with_weights()
    assert {"tita", "tcmoa_small", "mmaif", "average", "max", "laplacian", "mertens"} <= set(names)
    learned = max(names.index("tita"), names.index("tcmoa_small"), names.index("mmaif"))
    assert learned < names.index("average")  # learned models with shipped weights come first
    assert "tcmoa" not in names  # no weights ship for the large preset
    assert not any(n.startswith("tita_") for n in names)


def test_relative_change_sign():
    assert relative_change(0.8, 1.0, "ssim") == pytest.approx(-20.0)
    assert math.isnan(relative_change(1.0, 0.0, "ssim"))


def test_report_numbers_are_reproduced_independently(data, tmp_path):
    cfg = RobustnessConfig(data=data, out=tmp_path, models=["max", "average"], splits=(("tno", "ivf/tno"), ("vifb_dev", "vifb_dev")),
                           pairs=1, max_side=32, metrics=("ssim", "qabf"), types=["noise", "haze"], compounds=1, seed=3,
                           progress=False)
    path = build_report(cfg)
    with open(tmp_path / "robustness" / "robustness.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    conds = {r["condition"] for r in rows}
    assert conds == {"clean", "noise", "haze", "n=2", "n=3"}
    assert len(rows) == 2 * 5 * 2  # splits x conditions x models
    assert all(float(r["change"]) == 0 for r in rows if r["condition"] == "clean")
    # recompute one row by hand: degrade with the derived seed, fuse, score against the clean sources
    r = next(r for r in rows if r["split"] == "tno" and r["condition"] == "n=3" and r["model"] == "max")
    a0, b0 = load_u8(data / "ivf/tno/vi/p0.png", 32), load_u8(data / "ivf/tno/ir/p0.png", 32)
    assert a0.shape == (24, 32, 3) and b0.shape == (24, 32)
    seed = derive_seed(3, "tno/p0/n=3")
    assert int(r["seed"]) == seed
    d = degrade_pair(_to_t(a0), _to_t(b0), "ivf", seed=seed, n=3)
    assert r["types"] == ";".join(d.types) and len(d.types) == 3
    fuser = Fuser("max")
    got = evaluate(fuser(_to_u8(d.a), _to_u8(d.b)), a0, b0, metrics=["ssim", "qabf"])
    clean = evaluate(fuser(a0, b0), a0, b0, metrics=["ssim", "qabf"])
    for m in ("ssim", "qabf"):
        assert float(r[m]) == pytest.approx(got[m], abs=1e-12)
        assert float(r[f"{m}_change"]) == pytest.approx(relative_change(got[m], clean[m], m), abs=1e-9)
    assert float(r["change"]) == pytest.approx(np.mean([float(r["ssim_change"]), float(r["qabf_change"])]))
    text = path.read_text()
    assert "## Which model degrades least" in text and "degrades least" in text
    assert "| noise |" in text and "1 pair(s) per split" in text and "at most 32 px" in text
    assert (tmp_path / "robustness" / "tno_p0.jpg").is_file() and "robustness/tno_p0.jpg" in text


def test_script_refuses_unknown_split(capsys):
    from script_loader import load_script

    mod = load_script("robustness_report")
    assert mod.main(["--splits", "nope", "--no-progress"]) == 2
    assert "unknown split" in capsys.readouterr().err


def test_model_entries_carry_forward_options(data, tmp_path):
    """``NAME:OPT=VAL`` entries: mmaif in both modes are two columns, fused with their own mode."""
    from unifuse.report.pairs import split_model_spec

    assert split_model_spec("mmaif:mode=flow,steps=2") == ("mmaif", {"mode": "flow", "steps": 2})
    assert split_model_spec("max") == ("max", {})
    with pytest.raises(Exception, match="not OPT=VAL"):
        split_model_spec("mmaif:flow")
    import torch

    import unifuse
    from unifuse.models.mmaif import save_mmaif_weights

    torch.manual_seed(0)
    tiny = save_mmaif_weights(unifuse.create_model("mmaif", preset="tiny"), tmp_path / "tiny.safetensors")  # reg + flow
    cfg = RobustnessConfig(data=data, out=tmp_path, models=["mmaif:mode=reg", "mmaif:mode=flow,steps=1"], weights={"mmaif": str(tiny)},
                           splits=(("tno", "ivf/tno"),), pairs=1, max_side=16, metrics=("ssim",), types=["haze"],
                           compounds=0, sheets=0, seed=3, progress=False)
    build_report(cfg)
    rows = list(csv.DictReader(open(tmp_path / "robustness" / "robustness.csv", newline="")))
    assert {r["model"] for r in rows} == {"mmaif:mode=reg", "mmaif:mode=flow,steps=1"}
    reg = {r["condition"]: float(r["ssim"]) for r in rows if r["model"] == "mmaif:mode=reg"}
    flow = {r["condition"]: float(r["ssim"]) for r in rows if r["model"].endswith("steps=1")}
    assert reg != flow  # the two modes really ran
