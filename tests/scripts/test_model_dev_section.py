"""scripts/model_dev_section.py (the "TC-MoA small (CPU-trained)" and "MMAIF small" sections of docs/benchmarks.md)
and the restricting options of scripts/benchmark_report.py. No fusion: CSVs only (fast)."""

from __future__ import annotations

import csv
import shutil
import statistics
from pathlib import Path

import pytest

from script_loader import load_script

REPO = Path(__file__).resolve().parents[2]
TC_DIR, REF_DIR = REPO / "docs" / "benchmarks" / "tcmoa_small", REPO / "docs" / "benchmarks"


def _mean(path: Path, method_prefix: str, metric: str) -> float:
    rows = [r for r in csv.DictReader(path.open()) if r["method"].startswith(method_prefix)]
    return statistics.mean(float(r[metric]) for r in rows)


def test_section_puts_the_measured_means_next_to_tita():
    text = load_script("model_dev_section").section(TC_DIR, REF_DIR, "HEADER")
    assert text.startswith("## TC-MoA small (CPU-trained)") and "HEADER" in text
    lines = text.splitlines()
    tno = lines.index("### tno (IVF, 4 pairs)")
    row = next(l for l in lines[tno:] if l.startswith("| TC-MoA (tcmoa_small) |"))
    mi = float(row.split("|")[2])
    assert mi == pytest.approx(_mean(TC_DIR / "dev_tno.csv", "TC-MoA", "mi"), abs=5e-5)
    tita = next(l for l in lines[tno:] if l.startswith("| **TITA** (ours) |"))
    assert float(tita.split("|")[2].strip("* ")) == pytest.approx(_mean(REF_DIR / "dev_tno.csv", "TITA", "mi"), abs=5e-5)
    assert "the 25 published methods" in text  # vifb_dev ranks


def test_section_refuses_different_pairs(tmp_path):
    shutil.copy(TC_DIR / "dev_tno.csv", tmp_path / "dev_tno.csv")
    rows = (tmp_path / "dev_tno.csv").read_text().splitlines()
    (tmp_path / "dev_tno.csv").write_text("\n".join(rows[:-1]) + "\n")  # one pair fewer
    with pytest.raises(SystemExit, match="different images"):
        load_script("model_dev_section").section(tmp_path, REF_DIR, "")


def test_benchmark_report_restricting_options():
    mod = load_script("benchmark_report")
    args = mod.parse_args(["--skip-tita", "--baselines", "none", "--max-pairs", "2"])
    assert args.skip_tita and args.max_pairs == 2 and mod._baselines(args) == {"baselines": ()}
    assert mod._baselines(mod.parse_args(["--baselines", "max, laplacian"])) == {"baselines": ("max", "laplacian")}
    assert mod._baselines(mod.parse_args([])) == {}
    with pytest.raises(SystemExit):
        mod.parse_args(["--max-pairs", "0"])
    spec = mod.tcmoa_spec("tcmoa_small", None)  # the shipped small weights are found
    assert len(spec) == 1 and Path(spec[0].weights).name == "tcmoa_small.safetensors"
    assert mod.tcmoa_spec("tcmoa", None) == []  # the large preset ships none


def test_benchmark_report_model_option():
    mod = load_script("benchmark_report")
    (flow,) = mod.parse_model("mmaif:mode=flow,steps=5")  # the shipped MMAIF weights are found
    assert flow.name == "mmaif" and flow.options == {"mode": "flow", "steps": 5} and flow.kind == "other"
    assert flow.title == "mmaif (mode=flow, steps=5)" and Path(flow.weights).name == "mmaif_small.safetensors"
    (reg,) = mod.parse_model("mmaif:mode=reg,label=MMAIF reg,weights=/x.safetensors")
    assert reg.title == "MMAIF reg" and reg.weights == "/x.safetensors" and reg.options == {"mode": "reg"}
    (lap,) = mod.parse_model("laplacian")  # training-free: no weights needed
    assert lap.weights is None and lap.options is None
    with pytest.raises(SystemExit):
        mod.parse_model("mmaif:flow")


def test_section_lists_several_models(tmp_path):
    """Two models in one run (e.g. MMAIF reg and flow): both rows, one 'beats' row each."""
    rows = list(csv.DictReader((TC_DIR / "dev_tno.csv").open()))
    with (tmp_path / "dev_tno.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for name in ("M reg", "M flow"):
            w.writerows({**r, "method": name} for r in rows)
    text = load_script("model_dev_section").section(tmp_path, REF_DIR, "", title="M small")
    assert text.startswith("## M small")
    assert "| M reg |" in text and "| M flow |" in text
    assert "| M reg beats every baseline |" in text and "| M flow beats every baseline |" in text


def test_mmaif_section_of_the_docs_is_what_the_stored_rows_give():
    """docs/benchmarks.md's MMAIF tables are rebuilt from docs/benchmarks/mmaif_small/*.csv (reg and flow rows)."""
    text = load_script("model_dev_section").section(REF_DIR / "mmaif_small", REF_DIR, "", title="MMAIF small (CPU-trained)")
    doc = (REPO / "docs" / "benchmarks.md").read_text()
    tables = text.split("### vifb_dev", 1)[1]
    assert "## MMAIF small (CPU-trained)" in doc and "### vifb_dev" + tables.rstrip() in doc
    assert "| MMAIF small reg |" in tables and "| MMAIF small flow |" in tables
