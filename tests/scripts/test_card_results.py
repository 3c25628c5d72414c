"""scripts/card_results.py: our mean vs the best baseline's mean per metric, ✓ where ours is not worse."""

from __future__ import annotations

from script_loader import load_script


def _script():
    return load_script("card_results")


def test_table_cells(tmp_path, capsys):
    rows = ["method,kind,image,mi,ssim,fuse_s",
            "X,published,p1,9,9,", "tita,ours,p1,2,1.0,0.1", "tita,ours,p2,4,1.2,0.1",
            "max,baseline,p1,1,1.5,0.0", "max,baseline,p2,2,1.5,0.0", "average,baseline,p1,3,0.2,0.0",
            "average,baseline,p2,3.5,0.2,0.0"]
    (tmp_path / "vifb_dev.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "dev_tno.csv").write_text("\n".join(r for r in rows if not r.startswith("X")) + "\n")
    assert _script().main(["--csv-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # MI: ours 3.0 vs best baseline average 3.25 (no tick); SSIM: ours 1.1 vs max 1.5 (no tick)
    assert "| 3.000 / 3.250 (average) | 1.100 / 1.500 (max) |" in out
    assert "**vifb_dev (2 pairs)**" in out and "**dev_tno (2 pairs)**" in out
    (tmp_path / "vifb_dev.csv").write_text("\n".join(rows).replace("tita,ours,p2,4,1.2", "tita,ours,p2,9,1.2") + "\n")
    assert _script().main(["--csv-dir", str(tmp_path)]) == 0
    assert "5.500 / 3.250 (average) ✓" in capsys.readouterr().out


def test_missing_csv_is_an_error(tmp_path, capsys):
    assert _script().main(["--csv-dir", str(tmp_path)]) == 2
    assert "run scripts/benchmark_report.py first" in capsys.readouterr().err
