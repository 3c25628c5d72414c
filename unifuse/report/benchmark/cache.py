"""A CSV cache of metric values keyed by the content of the scored files.

Scoring the 25 published methods' fused images takes seconds per image; their values do not
depend on our models, so they are computed once and kept in a CSV (committed with the report).
A row is reused when its key — the SHA-256 of the fused image and both source files plus the
evaluation mode — matches; a metric missing from a row is computed and added. Values are
written with ``repr`` (exact float64 round trip).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from pathlib import Path
from typing import Dict, Iterable, Optional

from ...io.atomic import atomic_write_text

_FIXED = ("method", "image", "key")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def triple_key(fused: Path, a: Path, b: Path, mode: str) -> str:
    """Hash of the three files' contents and the mode (what the values depend on)."""
    parts = [file_sha256(p) for p in (fused, a, b)] + [mode]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


class MetricCache:
    """``{(method, image): (key, {metric: value})}`` backed by a CSV file."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path = Path(path)
        self.rows: Dict[tuple, tuple] = {}
        if enabled and self.path.is_file():
            self._read()

    def _read(self) -> None:
        with open(self.path, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                vals = {k: float(v) for k, v in r.items() if k not in _FIXED and v not in ("", None)}
                self.rows[(r["method"], r["image"])] = (r["key"], vals)

    def get(self, method: str, image: str, key: str, metrics: Iterable[str]) -> Dict[str, float]:
        """Cached values of ``metrics`` for this triple (only those present, only if the key matches)."""
        hit = self.rows.get((method, image))
        if hit is None or hit[0] != key:
            return {}
        return {m: hit[1][m] for m in metrics if m in hit[1]}

    def put(self, method: str, image: str, key: str, values: Dict[str, float]) -> None:
        old = self.rows.get((method, image))
        merged = dict(old[1]) if old is not None and old[0] == key else {}
        merged.update(values)
        self.rows[(method, image)] = (key, merged)

    def save(self, metric_order: Optional[Iterable[str]] = None) -> None:
        order = list(metric_order or [])
        for _, vals in self.rows.values():
            order += [m for m in vals if m not in order]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(list(_FIXED) + order)
        for (method, image), (key, vals) in sorted(self.rows.items()):
            w.writerow([method, image, key] + [_cell(vals.get(m)) for m in order])
        atomic_write_text(self.path, buf.getvalue(), newline="")


def _cell(v: Optional[float]) -> str:
    if v is None:
        return ""
    return "nan" if math.isnan(v) else repr(float(v))
