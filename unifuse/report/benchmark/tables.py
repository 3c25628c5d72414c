"""Markdown tables of the benchmark report: means per method, best in bold, ranks of our model.

Rows are the per-image dicts of :mod:`.scoring` (``method``, ``image``, ``kind``, metric values).
A method's score is the mean over its images (NaN values left out). The rank of a method is
``1 + the number of methods with a strictly better mean`` (ties share a rank); "better" follows
the metric's direction (:func:`unifuse.metrics.metric_info`).
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

#: column titles as the papers print them
TITLES = {"mi": "MI", "fmi": "FMI", "qabf": "Qabf", "qp": "Qp", "qw": "Qw", "vif": "VIF", "sd": "SD", "ei": "EI",
          "ssim": "SSIM", "mef_ssim": "MEF-SSIM", "PSNR_gt": "PSNR (GT)", "SSIM_gt": "SSIM (GT)",
          "SAM_gt": "SAM° (GT)", "ERGAS_gt": "ERGAS (GT)"}
#: scores against a ground truth (:func:`unifuse.report.pairs.score_fused`): higher is better?
REFERENCE_SCORES = {"PSNR_gt": True, "SSIM_gt": True, "SAM_gt": False, "ERGAS_gt": False}


def higher_is_better(metric: str) -> Optional[bool]:
    from ...metrics import metric_info

    if metric in REFERENCE_SCORES:
        return REFERENCE_SCORES[metric]
    return metric_info(metric).higher_is_better


def title(metric: str) -> str:
    arrow = {True: " ↑", False: " ↓"}.get(higher_is_better(metric), "")
    return TITLES.get(metric, metric.upper()) + arrow


def fmt(x: float) -> str:
    if x != x:
        return "nan"
    return f"{x:.2f}" if abs(x) >= 100 else f"{x:.4f}"


def means(rows: Sequence[dict], columns: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """``{method: {column: mean over its images}}`` in order of first appearance."""
    out: Dict[str, Dict[str, float]] = {}
    for meth in dict.fromkeys(r["method"] for r in rows):
        out[meth] = {}
        for c in columns:
            vals = [float(r[c]) for r in rows if r["method"] == meth and c in r and not math.isnan(float(r[c]))]
            out[meth][c] = sum(vals) / len(vals) if vals else float("nan")
    return out


def _better(a: float, b: float, higher: Optional[bool]) -> bool:
    return (a > b) if higher is not False else (a < b)


def rank(scores: Dict[str, float], target: str, metric: str, among: Sequence[str]) -> int:
    """Rank of ``target`` among the methods ``among`` (``target`` counted once even if absent)."""
    higher, mine = higher_is_better(metric), scores[target]
    return 1 + sum(1 for m in among if m != target and not math.isnan(scores[m]) and _better(scores[m], mine, higher))


def best(scores: Dict[str, float], metric: str) -> Optional[float]:
    vals = [v for v in scores.values() if not math.isnan(v)]
    if not vals or higher_is_better(metric) is None:
        return None
    return max(vals) if higher_is_better(metric) is not False else min(vals)


def _label(method: str, kind: str) -> str:
    return {"ours": f"**{method}** (ours)", "baseline": f"`{method}` (ours, training-free)"}.get(kind, method)


def _lines(header: List[str], body: List[List[str]]) -> List[str]:
    return ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)] + \
        ["| " + " | ".join(r) + " |" for r in body]


def means_table(rows: Sequence[dict], metrics: Sequence[str], extra: Sequence[str] = ()) -> tuple[str, Dict]:
    """Mean per method (best per metric in bold, our rows marked); ``extra`` columns are shown plain.

    A column that none of a method's rows has (a score that does not apply) shows ``–``.
    """
    kinds = {r["method"]: r["kind"] for r in rows}
    m = means(rows, list(metrics) + list(extra))
    has = {(r["method"], c) for r in rows for c in r}
    bests = {c: best({k: v[c] for k, v in m.items()}, c) for c in metrics}
    body = []
    for meth, vals in m.items():
        cells = [_label(meth, kinds[meth])]
        for c in metrics:
            s = fmt(vals[c]) if (meth, c) in has else "–"
            cells.append(f"**{s}**" if bests[c] is not None and vals[c] == bests[c] else s)
        cells += [fmt(vals[c]) if (meth, c) in has else "–" for c in extra]
        body.append(cells)
    header = ["Method"] + [title(c) for c in metrics] + [{"fuse_s": "fuse s/img"}.get(c, c) for c in extra]
    return "\n".join(_lines(header, body)), m


def rank_table(m: Dict[str, Dict[str, float]], metrics: Sequence[str], target: str,
               groups: Sequence[tuple[str, Sequence[str]]]) -> str:
    """``target``'s rank per metric (and mean rank) among each group ``(label, methods)``."""
    body = []
    for label, among in groups:
        ranks = [rank({k: v[c] for k, v in m.items()}, target, c, among) for c in metrics]
        body.append([label] + [str(r) for r in ranks] + [f"{sum(ranks) / len(ranks):.1f}"])
    return "\n".join(_lines(["Rank of " + target] + [title(c) for c in metrics] + ["mean rank"], body))


def beats_row(m: Dict[str, Dict[str, float]], metrics: Sequence[str], target: str, rivals: Sequence[str]) -> str:
    """Markdown row: ✓ where ``target``'s mean is strictly better than every rival's."""
    cells = []
    for c in metrics:
        h = higher_is_better(c)
        ok = all(_better(m[target][c], m[r][c], h) for r in rivals if not math.isnan(m[r][c]))
        cells.append("✓" if ok else "✗")
    return "| " + " | ".join([f"{target} beats every baseline"] + cells) + " |"
