"""scripts/benchmark_report.py and the report machinery on a tiny subset of the shared data.

The report's numbers are checked against values computed here independently: the published
methods' fused files and our fused images scored directly with ``unifuse.metrics.evaluate``.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
import torch
from _markdown_tables import table_rows

from unifuse import metrics
from unifuse.inference.fuse import Fuser
from unifuse.models import create_model
from unifuse.models.tita.checkpoint import save_tita_weights
from unifuse.report.benchmark import ReportConfig, build_report
from unifuse.report.benchmark.tables import fmt

from script_loader import load_script

METRICS = ("sd", "ei")
IMAGES = ("carWhite", "elecbike")  # 96 and 64 px crops


def _script():
    return load_script("benchmark_report")


def _mean_cells(per_image: list[dict]) -> list[str]:
    return [fmt(sum(d[m] for d in per_image) / len(per_image)) for m in METRICS]


@pytest.fixture(scope="module")
def crops(data_dir) -> Path:
    d = data_dir / "vifb_dev_crops"
    if not (d / "fused" / "GFF").is_dir():
        pytest.skip(f"no vifb_dev_crops at {d}")
    return d


@pytest.fixture(scope="module")
def report(crops, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    data = tmp / "data"
    (data / "ivf").mkdir(parents=True)
    (data / "vifb_dev_crops").symlink_to(crops)
    (data / "ivf" / "roadscene").symlink_to(crops)  # vi/ + ir/: a dev split of 1 pair (carShadow)
    torch.manual_seed(0)
    weights = save_tita_weights(create_model("tita"), tmp / "tita.safetensors", {"step": "7"})
    cfg = ReportConfig(data=data, out=tmp / "docs", weights=str(weights), baselines=("average", "max"),
                       metrics=METRICS, vifb="vifb_dev_crops", vifb_methods=("GFF", "GTF"), vifb_images=IMAGES,
                       splits=(("roadscene", "ivf/roadscene"),), progress=False, notes=["test note"],
                       generalisation=False)  # tested in tests/report/benchmark/test_generalisation.py
    md = build_report(cfg)
    return md.read_text(), tmp / "docs" / "benchmarks", weights, crops


def test_vifb_table_matches_direct_evaluation(report):
    text, _, weights, crops = report
    rows = table_rows(text, "## vifb_dev_crops")
    assert set(rows) == {"GFF", "GTF", "TITA (ours)", "`average` (ours, training-free)", "`max` (ours, training-free)"}
    for method in ("GFF", "GTF"):
        per = [metrics.evaluate(crops / "fused" / method / f"{s}.png", crops / "vi" / f"{s}.png",
                                crops / "ir" / f"{s}.png", metrics=list(METRICS)) for s in IMAGES]
        assert rows[method] == _mean_cells(per)
    for name, label, w in (("tita", "TITA (ours)", str(weights)), ("average", "`average` (ours, training-free)", None)):
        fuser = Fuser(name, weights=w)
        per = [metrics.evaluate(fuser(crops / "vi" / f"{s}.png", crops / "ir" / f"{s}.png"), crops / "vi" / f"{s}.png",
                                crops / "ir" / f"{s}.png", metrics=list(METRICS)) for s in IMAGES]
        assert rows[label] == _mean_cells(per)


def test_ranks_header_and_csvs(report):
    text, csv_dir, weights, _ = report
    means = {k: [float(x) for x in v] for k, v in table_rows(text, "## vifb_dev_crops").items()}
    ranks = table_rows(text, "TITA's rank (1 = best")
    for group, members in (("TITA + the 2 published methods", ["GFF", "GTF"]), ("all 5 methods", list(means))):
        expected = [str(1 + sum(means[m][i] > means["TITA (ours)"][i] for m in members)) for i in range(len(METRICS))]
        assert ranks[group][:len(METRICS)] == expected
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    assert f"sha256 `{sha}`, 7 training iterations" in text and "under-trained" in text and "* test note" in text
    rows = list(csv.DictReader(open(csv_dir / "vifb_dev_crops.csv")))
    assert len(rows) == 2 * 5 and {r["kind"] for r in rows} == {"published", "ours", "baseline"}
    cache = list(csv.DictReader(open(csv_dir / "vifb_dev_crops_published.csv")))
    assert len(cache) == 2 * 2 and set(METRICS) <= set(cache[0])


def test_dev_split_table(report):
    text, csv_dir, weights, crops = report
    rows = table_rows(text, "### roadscene")
    vi, ir = crops / "vi" / "carShadow.png", crops / "ir" / "carShadow.png"  # first pair by name = the dev split
    per = {}
    for name, label, w in (("tita", "TITA (ours)", str(weights)), ("average", "`average` (ours, training-free)", None),
                           ("max", "`max` (ours, training-free)", None)):
        per[label] = metrics.evaluate(Fuser(name, weights=w)(vi, ir), vi, ir, metrics=list(METRICS))
        assert rows[label][:len(METRICS)] == _mean_cells([per[label]])
    beats = ["✓" if all(per["TITA (ours)"][m] > per[b][m] for b in per if b != "TITA (ours)") else "✗" for m in METRICS]
    assert rows["TITA beats every baseline"][:len(METRICS)] == beats
    assert [r["image"] for r in csv.DictReader(open(csv_dir / "dev_roadscene.csv"))] == ["carShadow"] * 3


def test_script_errors_are_one_line(tmp_path, capsys):
    main = _script().main
    assert main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "docs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data folder not found" in err
    (tmp_path / "data" / "vifb_dev" / "vi").mkdir(parents=True)
    (tmp_path / "data" / "vifb_dev" / "ir").mkdir()
    assert main(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "docs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "vifb_dev: no image pairs" in err and "Traceback" not in err
