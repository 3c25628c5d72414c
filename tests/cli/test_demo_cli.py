"""`unifuse demo`: built-in samples, real held-out pairs from ../shared (skipped when absent), unseen tasks, options."""

from __future__ import annotations

import csv
import re

import pytest

from unifuse.cli.demo import BASELINES, available_models
from unifuse.cli.main import main


def _rows(out):
    with open(out / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _check_links(out):
    """Every <img> of the report is a relative path to an existing file; nothing external."""
    html = (out / "report.html").read_text()
    srcs = re.findall(r"src='([^']+)'", html)
    assert srcs
    for src in srcs:
        assert not src.startswith(("/", "http:", "https:", "file:")) and (out / src).is_file(), src
    assert "http://" not in html and "https://" not in html
    return html


def test_demo_uses_shipped_tita_by_default(tmp_path, capsys):
    """The main job shows the shipped TITA next to the baselines (one sample to stay fast)."""
    from unifuse.models.tita import TITA

    if TITA.default_weights() is None:
        pytest.skip("this build ships no TITA weights")
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--no-data", "--no-unseen", "--max-pairs", "1"]) == 0
    rows = [r for r in _rows(out) if r["model"] == "tita"]
    assert len(rows) == 1 and float(rows[0]["PSNR_gt"]) > 0
    assert (out / "images" / f"{rows[0]['sample']}_tita.png").is_file()
    assert "weights shipped" in capsys.readouterr().err


def test_demo_builtin_samples_with_baselines(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--no-data", "--no-unseen", "--models", ",".join(BASELINES)]) == 0
    html = _check_links(out)
    assert "<img" in html and "laplacian" in html
    imgs = {p.name for p in (out / "images").iterdir()}
    assert "mff_astronaut_laplacian.png" in imgs and "mef_chelsea_mertens.png" in imgs
    assert (out / "metrics.csv").read_text().splitlines()[0].startswith("sample,task,model,PSNR_gt,SSIM_gt")
    rows = _rows(out)
    assert {r["group"] for r in rows} == {"built-in sample"}
    fused = [r for r in rows if r["model"] in BASELINES]
    assert len(fused) == 4 * len(BASELINES) and all(r["PSNR_gt"] and r["QABF"] for r in fused)
    # the sources themselves are scored against the ground truth (what doing nothing gets)
    assert {r["model"] for r in rows if r["sample"] == "mef_chelsea"} >= {"(source: over-exposed)", "(source: under-exposed)"}


def test_demo_includes_real_dev_pairs(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNIFUSE_SHARED", str(data_dir.parent))  # found without --data
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--models", "laplacian", "--no-unseen", "--max-pairs", "4"]) == 0
    rows = _rows(out)
    real = [r for r in rows if r["group"] == "real held-out pair"]
    if not real:
        pytest.skip(f"no dev-pair folders under {data_dir}")
    assert {r["task"] for r in real} <= {"IVF", "MEF", "MFF"} and len(real) >= 3
    assert all(r["model"] == "laplacian" and r["PSNR_gt"] == "" and r["MI"] and r["QABF"] for r in real)
    html = _check_links(out)
    assert "real held-out pair: ivf_vifb_1_carWhite (IVF)" in html and "No ground truth" in html
    for r in real:
        assert (out / "images" / f"{r['sample']}_laplacian.png").is_file()
        assert (out / "images" / f"{r['sample']}_A.png").is_file()

    # --no-data leaves them out although the data is there
    out2 = tmp_path / "demo2"
    assert main(["demo", "-o", str(out2), "--models", "laplacian", "--no-unseen", "--max-pairs", "1", "--no-data"]) == 0
    assert {r["group"] for r in _rows(out2)} == {"built-in sample"}
    assert "real held-out" not in _check_links(out2)
    # an explicit --data works too
    out3 = tmp_path / "demo3"
    monkeypatch.setenv("UNIFUSE_SHARED", str(tmp_path / "nowhere"))
    assert main(["demo", "-o", str(out3), "--models", "average", "--no-unseen", "--max-pairs", "1", "--data", str(data_dir)]) == 0
    assert "real held-out pair" in {r["group"] for r in _rows(out3)}


def test_demo_without_data_and_unseen_tasks(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNIFUSE_SHARED", str(tmp_path / "nowhere"))
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--models", "average,laplacian", "--max-pairs", "1"]) == 0
    assert "real pairs skipped" in capsys.readouterr().err
    rows = _rows(out)
    assert {r["group"] for r in rows} == {"built-in sample", "unseen task"}
    assert len({r["sample"] for r in rows}) == 2  # --max-pairs 1 per group
    html = _check_links(out)
    assert "unseen task: pan_coffee (PAN)" in html
    pan = [r for r in rows if r["sample"] == "pan_coffee" and r["model"] == "laplacian"]
    assert pan and pan[0]["SAM_gt"] and pan[0]["ERGAS_gt"]
    imgs = {p.name for p in (out / "images").iterdir()}
    assert {"pan_coffee_A.png", "pan_coffee_B.png", "pan_coffee_ground_truth.png", "pan_coffee_laplacian.png"} <= imgs


@pytest.mark.parametrize("extra,needle", [
    (["--models", "tita"], "--weights"),
    (["--models", ","], "--models"),
    (["--models", "nonexistent"], "unknown model"),
    (["--max-pairs", "-1"], "--max-pairs"),
    (["--max-side", "8"], "--max-side"),
    (["--data", "{tmp}/missing"], "--data"),
    (["--weights", "{tmp}/corrupt.safetensors"], "cannot read weights"),
])
def test_demo_bad_options_one_line_error(tmp_path, monkeypatch, capsys, extra, needle):
    from unifuse.models.tita import TITA

    monkeypatch.setattr(TITA, "default_weights", staticmethod(lambda: None))  # as in a build without shipped weights
    (tmp_path / "corrupt.safetensors").write_bytes(b"not a safetensors file")
    extra = [x.replace("{tmp}", str(tmp_path)) for x in extra]
    rc = main(["demo", "-o", str(tmp_path / "out"), "--no-unseen", "--max-pairs", "1"] + extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and needle in err[-1] and "Traceback" not in "\n".join(err)


def test_available_models_with_weights(monkeypatch):
    from unifuse.models.tita import TITA

    monkeypatch.setattr(TITA, "default_weights", staticmethod(lambda: None))
    assert available_models()[0] == BASELINES
    names, note = available_models("runs/x")
    assert names == ["tita"] + BASELINES and "runs/x" in note


def test_shrink_pair_keeps_sources_and_ground_truth_aligned():
    import numpy as np

    from unifuse.cli.demo import shrink_pair
    from unifuse.data.samples import SamplePair

    rng = np.random.default_rng(0)
    rgb = rng.random((300, 450, 3), dtype=np.float32)
    gray = rng.random((300, 450), dtype=np.float32)
    pair = SamplePair("p", "IVF", rgb, gray, rgb.copy())
    small = shrink_pair(pair, 150)
    assert small.a.shape == (100, 150, 3) and small.b.shape == (100, 150) and small.ground_truth.shape == (100, 150, 3)
    assert small.a.dtype == np.float32 and 0 <= small.a.min() and small.a.max() <= 1
    # area resampling by 3: each output pixel is the mean of a 3x3 block
    np.testing.assert_allclose(small.b[0, 0], gray[:3, :3].mean(), rtol=1e-5)
    np.testing.assert_array_equal(small.a, small.ground_truth)
    assert shrink_pair(pair, 0) is pair and shrink_pair(pair, 450) is pair
    assert shrink_pair(SamplePair("q", "MED", gray, gray, None), 225).ground_truth is None
