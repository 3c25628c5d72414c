"""``unifuse eval`` on temporary folders (and on the shared VIFB crops when present)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from unifuse.cli.main import main

RNG = np.random.default_rng(3)


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture()
def folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for stem in ("x", "y"):
        _save(a / f"{stem}.png", RNG.integers(0, 256, (20, 24), dtype=np.uint8))
        _save(b / f"{stem}.jpg", RNG.integers(0, 256, (20, 24), dtype=np.uint8))
    for meth, shift in (("good", 0), ("bad", 60)):
        for stem in ("x", "y"):
            src = np.asarray(Image.open(a / f"{stem}.png")).astype(int)
            _save(tmp_path / "fused" / meth / f"{stem}.png", np.clip(src + shift, 0, 255).astype(np.uint8))
    return tmp_path


def test_eval_methods_table_and_csv(folders, capsys):
    out = folders / "res.csv"
    rc = main(["eval", "--fused", str(folders / "fused"), "--a", str(folders / "a"), "--b", str(folders / "b"),
               "--metrics", "en,psnr", "rmse", "-o", str(out), "--markdown", str(folders / "t.md")])
    assert rc == 0
    table = capsys.readouterr().out
    assert "| Method | EN ↑ | PSNR ↑ | RMSE ↓ |" in table
    good = next(line for line in table.splitlines() if line.startswith("| good"))
    bad = next(line for line in table.splitlines() if line.startswith("| bad"))
    # fused == source A: best PSNR and RMSE are marked for 'good'
    g_cells, b_cells = good.split("|")[3:5], bad.split("|")[3:5]
    assert all(c.strip().startswith("**") for c in g_cells) and not any("**" in c for c in b_cells)
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 4 and set(rows[0]) == {"method", "image", "en", "psnr", "rmse"}
    assert (folders / "t.md").read_text().startswith("| Method")


def test_eval_skips_bad_files_and_fails(folders, capsys):
    fused = folders / "fused" / "good"
    (fused / "y.png").write_bytes(b"garbage")  # unreadable
    _save(fused / "z.png", np.zeros((20, 24), np.uint8))  # no sources with this stem
    _save(fused / "x.png", np.zeros((10, 10), np.uint8))  # wrong size
    _save(folders / "fused" / "good2" / "x.png", np.zeros((20, 24), np.uint8))
    out = folders / "res.csv"
    rc = main(["eval", "--fused", str(folders / "fused"), "--a", str(folders / "a"), "--b", str(folders / "b"),
               "--metrics", "sd", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "y.png" in err and "'z'" in err and "sizes differ" in err
    assert len(list(csv.DictReader(open(out)))) == 3  # bad/x,y + good2/x were evaluated


def test_eval_single_folder_and_errors(folders, capsys):
    rc = main(["eval", "--fused", str(folders / "fused" / "good"), "--a", str(folders / "a"),
               "--b", str(folders / "b"), "--metrics", "psnr:convention=standard"])
    assert rc == 0
    assert "| good |" in capsys.readouterr().out
    assert main(["eval", "--fused", str(folders / "fused"), "--a", str(folders / "a"), "--b",
                 str(folders / "b"), "--metrics", "nope"]) == 1
    assert "unknown metric" in capsys.readouterr().err


def test_eval_on_vifb_crops(data_dir, tmp_path, capsys):
    d = data_dir / "vifb_dev_crops"
    rc = main(["eval", "--fused", str(d / "fused"), "--a", str(d / "ir"), "--b", str(d / "vi"),
               "--metrics", "en,mi,fmi", "--mode", "gray", "-o", str(tmp_path / "r.csv")])
    assert rc == 0
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert len(rows) == 12
    # carShadow/GFF crop: MEFB FMI reference 0.920371122964 (Octave)
    r = next(r for r in rows if r["method"] == "GFF" and r["image"] == "carShadow")
    assert float(r["fmi"]) == pytest.approx(0.920371122964, rel=1e-9)


def test_metric_options_separate_by_comma_or_semicolon():
    from unifuse.cli.eval import parse_metrics

    by_comma = parse_metrics(["en,fmi:feature=pixel,window=5,te:q=2", "sd"])
    assert [(m.name, m.options) for m in by_comma] == [
        ("en", {}), ("fmi", {"feature": "pixel", "window": 5}), ("te", {"variant": "benchmark", "q": 2}), ("sd", {})]
    by_semicolon = parse_metrics(["fmi:feature=pixel;window=5"])
    assert by_semicolon[0].options == by_comma[1].options
