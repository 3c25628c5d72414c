"""Means, ranks and Markdown tables of the benchmark report (synthetic numbers)."""

from __future__ import annotations

import math

from unifuse.report.benchmark.tables import beats_row, best, means, means_table, rank, rank_table

ROWS = [
    {"method": "P1", "kind": "published", "image": "x", "sd": 10.0, "ce": 1.0},
    {"method": "P1", "kind": "published", "image": "y", "sd": 20.0, "ce": 3.0},
    {"method": "P2", "kind": "published", "image": "x", "sd": 30.0, "ce": 0.5},
    {"method": "P2", "kind": "published", "image": "y", "sd": float("nan"), "ce": 0.5},
    {"method": "TITA", "kind": "ours", "image": "x", "sd": 15.0, "ce": 2.0},
    {"method": "TITA", "kind": "ours", "image": "y", "sd": 15.0, "ce": 2.0},
    {"method": "avg", "kind": "baseline", "image": "x", "sd": 5.0, "ce": 4.0},
    {"method": "avg", "kind": "baseline", "image": "y", "sd": 5.0, "ce": 4.0},
]


def test_means_skip_nan_and_keep_order():
    m = means(ROWS, ["sd", "ce"])
    assert list(m) == ["P1", "P2", "TITA", "avg"]
    assert m["P1"] == {"sd": 15.0, "ce": 2.0} and m["P2"]["sd"] == 30.0


def test_rank_follows_direction_and_ties_share():
    m = means(ROWS, ["sd", "ce"])
    sd = {k: v["sd"] for k, v in m.items()}
    ce = {k: v["ce"] for k, v in m.items()}  # ce: lower is better
    assert rank(sd, "TITA", "sd", ["P1", "P2"]) == 2  # P2 better, P1 tied
    assert rank(sd, "TITA", "sd", list(m)) == 2
    assert rank(ce, "TITA", "ce", ["P1", "P2"]) == 2  # P2 (0.5) better, P1 (2.0) tied
    assert rank(ce, "TITA", "ce", list(m)) == 2
    assert best(sd, "sd") == 30.0 and best(ce, "ce") == 0.5


def test_tables_mark_best_ours_and_ranks():
    table, m = means_table(ROWS, ["sd", "ce"])
    lines = table.splitlines()
    assert lines[0] == "| Method | SD ↑ | CE ↓ |"
    assert "| **TITA** (ours) | 15.0000 | 2.0000 |" in lines
    assert "| `avg` (ours, training-free) | 5.0000 | 4.0000 |" in lines
    assert "| P2 | **30.0000** | **0.5000** |" in lines
    rt = rank_table(m, ["sd", "ce"], "TITA", [("published", ["P1", "P2"]), ("all", list(m))]).splitlines()
    assert rt[0] == "| Rank of TITA | SD ↑ | CE ↓ | mean rank |"
    assert rt[2:] == ["| published | 2 | 2 | 2.0 |", "| all | 2 | 2 | 2.0 |"]


def test_beats_row():
    m = means(ROWS, ["sd", "ce"])
    assert beats_row(m, ["sd", "ce"], "TITA", ["avg"]) == "| TITA beats every baseline | ✓ | ✓ |"
    assert beats_row(m, ["sd", "ce"], "TITA", ["avg", "P2"]) == "| TITA beats every baseline | ✗ | ✗ |"
    m["P1"]["sd"] = math.nan  # a baseline without a value does not count
    assert beats_row(m, ["sd"], "TITA", ["avg", "P1"]) == "| TITA beats every baseline | ✓ |"
