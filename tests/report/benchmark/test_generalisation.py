"""The benchmark report's generalisation section on one unseen pair (cheap metrics, a tiny random TITA).

The table's values are checked against scores computed here directly: PSNR/SSIM with scikit-image,
SAM/ERGAS with :func:`unifuse.data.unseen.pansharpening_scores`, the no-reference metrics with
:func:`unifuse.metrics.evaluate`, each on the image a :class:`~unifuse.inference.fuse.Fuser`
returns for the pair.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from _markdown_tables import table_rows
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from unifuse import metrics
from unifuse.data.unseen import load_unseen, pansharpening_scores
from unifuse.inference.fuse import Fuser
from unifuse.models import create_model
from unifuse.models.tita.checkpoint import save_tita_weights
from unifuse.report.benchmark import ReportConfig, build_report
from unifuse.report.benchmark.tables import fmt

REPO = Path(__file__).resolve().parents[3]
PAIR, METRICS = "pan_rocket", ("sd", "ei")
COLUMNS = ["PSNR_gt", "SSIM_gt", "SAM_gt", "ERGAS_gt", *METRICS]  # table order (fuse s/img last)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gen")
    torch.manual_seed(0)
    tiny = create_model("tita", embed_dim=12, num_heads=2, depths_ex=1, depths_fusion=(2,), depths_re=1)
    (tmp / "run").mkdir()
    save_tita_weights(tiny, tmp / "run" / "ema.safetensors", {"step": "3"})  # a run folder: its model.json
    (tmp / "run" / "model.json").write_text(json.dumps(  # gives the tiny config to Fuser and the report
        {"model": "tita", "config": tiny.config.to_dict(), "weights": {"ema": "ema.safetensors"}}))
    weights = tmp / "run"
    cfg = ReportConfig(data=tmp / "no-data", out=tmp / "docs", weights=str(weights), baselines=("average", "max"),
                       metrics=METRICS, vifb=None, splits=(), unseen=(PAIR,), progress=False)
    md = build_report(cfg)
    return md.read_text(), md.parent, str(weights)


def _direct(fused, pair) -> dict[str, float]:
    f8, gt8 = np.asarray(fused), np.rint(pair.ground_truth * 255).astype(np.uint8)
    f = f8.astype(np.float32) / 255
    return {"PSNR_gt": peak_signal_noise_ratio(gt8, f8, data_range=255),
            "SSIM_gt": structural_similarity(gt8, f8, channel_axis=-1, data_range=255),
            **pansharpening_scores(f, pair.ground_truth), **metrics.evaluate(f, pair.a, pair.b, metrics=list(METRICS))}


def test_section_image_is_linked_relatively(report):
    md, out, _ = report
    assert "## Generalisation" in md and f"### {PAIR} (PAN, 384×256)" in md and "Simulated pan-sharpening" in md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links == [f"benchmarks/generalisation/{PAIR}.jpg"]
    with Image.open(out / links[0]) as im:  # sources + ground truth + 3 models in a 4 × 2 grid
        assert im.width > 4 * 384 and im.height > 2 * 256
    assert sorted(p.name for p in (out / "benchmarks" / "generalisation").iterdir()) == [f"{PAIR}.jpg"]


def test_table_matches_direct_scores(report):
    md, out, weights = report
    pair = load_unseen(PAIR)
    rows = table_rows(md, f"### {PAIR}")
    direct = {}
    for name, label, w in (("tita", "TITA (ours)", weights), ("average", "`average` (ours, training-free)", None),
                           ("max", "`max` (ours, training-free)", None)):
        direct[label] = _direct(Fuser(name, weights=w, color=pair.color)(pair.a, pair.b), pair)
        assert rows[label][:len(COLUMNS)] == [fmt(direct[label][c]) for c in COLUMNS]
    src = rows["source A: multispectral (1/4 res.)"]
    assert src[0] == fmt(peak_signal_noise_ratio(np.rint(pair.ground_truth * 255).astype(np.uint8),
                                                 np.rint(pair.a * 255).astype(np.uint8), data_range=255))
    assert src[len(COLUMNS) - len(METRICS):] == ["–"] * (len(METRICS) + 1)
    ours, sign = direct.pop("TITA (ours)"), {"SAM_gt": -1, "ERGAS_gt": -1}  # lower is better
    beats = ["✓" if all(sign.get(c, 1) * (ours[c] - d[c]) > 0 for d in direct.values()) else "✗" for c in COLUMNS]
    assert rows["TITA beats every baseline"][:len(COLUMNS)] == beats
    per = list(csv.DictReader(open(out / "benchmarks" / "generalisation.csv")))
    assert [r["method"] for r in per] == ["TITA", "average", "max", "source A: multispectral (1/4 res.)"]
    assert float(per[1]["PSNR_gt"]) == pytest.approx(direct["`average` (ours, training-free)"]["PSNR_gt"], abs=1e-12)


def test_script_flags():
    spec = importlib.util.spec_from_file_location("benchmark_report", REPO / "scripts" / "benchmark_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod._sections(mod.parse_args([])) == {"generalisation": True}
    assert mod._sections(mod.parse_args(["--no-generalisation"])) == {"generalisation": False}
    assert mod._sections(mod.parse_args(["--only", "generalisation"])) == {"generalisation": True, "vifb": None,
                                                                         "splits": ()}
    assert mod._sections(mod.parse_args(["--only", "vifb", "--only", "dev"])) == {"generalisation": False}
    with pytest.raises(SystemExit):
        mod.parse_args(["--only", "generalisation", "--no-generalisation"])
