"""Training logs: CSV files (always) and TensorBoard (when the package is installed).

Each CSV has a ``step`` column first. When a run is resumed from checkpoint ``s``, rows
with ``step > s`` (written after that checkpoint by the interrupted run) are dropped so
that the log matches the resumed trajectory.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from ..io.atomic import atomic_write_text


class CSVLog:
    """Append-only CSV with a fixed header, flushed after every row.

    Args:
        path: CSV file.
        fields: column names; ``"step"`` is prepended if missing.
        resume_step: if given, keep an existing file but drop rows with ``step`` greater
            than this; if ``None`` an existing file is overwritten.
    """

    def __init__(self, path: str | os.PathLike, fields: List[str], resume_step: Optional[int] = None):
        self.path = Path(path)
        self.fields = fields if fields and fields[0] == "step" else ["step", *[f for f in fields if f != "step"]]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows: List[Dict[str, str]] = []
        if resume_step is not None and self.path.is_file():
            rows = [r for r in read_csv(self.path) if _int(r.get("step")) is not None and _int(r["step"]) <= resume_step]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.fields, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(self.path, buf.getvalue())
        self._f = open(self.path, "a", encoding="utf-8", newline="")
        self._w = csv.DictWriter(self._f, fieldnames=self.fields, extrasaction="ignore", lineterminator="\n")

    def write(self, row: Mapping[str, object]) -> None:
        self._w.writerow({k: _fmt(v) for k, v in row.items()})
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def _fmt(v: object) -> object:
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return v


def _int(s: object) -> Optional[int]:
    try:
        return int(str(s))
    except ValueError:
        return None


def read_csv(path: str | os.PathLike) -> List[Dict[str, str]]:
    """Rows of a CSV file as dicts of strings (a truncated last line is ignored)."""
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines = lines[:-1]  # a run killed mid-write leaves a partial last row
    reader = csv.DictReader(lines)
    return [r for r in reader if None not in r.values() and None not in r]


def wall_time_at(run: str | os.PathLike, step: int) -> Optional[float]:
    """Cumulative training time (s) of ``run`` at ``step``: ``time_s`` of the last row of its
    ``train_log.csv`` with a step <= ``step``; ``None`` without a log or such a row."""
    log = Path(run) / "train_log.csv"
    if not log.is_file():
        return None
    rows = [r for r in read_csv(log) if _int(r.get("step")) is not None and int(r["step"]) <= int(step)]
    return float(rows[-1]["time_s"]) if rows else None


def read_columns(path: str | os.PathLike) -> Dict[str, List[float]]:
    """Numeric columns of a CSV file (``nan`` for empty/non-numeric cells)."""
    rows = read_csv(path)
    cols: Dict[str, List[float]] = {}
    for r in rows:
        for k, v in r.items():
            try:
                x = float(v)
            except (TypeError, ValueError):
                x = float("nan")
            cols.setdefault(k, []).append(x)
    return cols


def prefixed_columns(cols: Mapping[str, List[float]], prefix: str) -> Dict[str, List[float]]:
    """The columns named ``prefix + name`` of :func:`read_columns`' result, keyed by ``name``
    (e.g. ``loss_IVF`` -> ``IVF`` for ``prefix="loss_"``), in file order."""
    return {k[len(prefix):]: v for k, v in cols.items() if k.startswith(prefix)}


class TensorBoardLog:
    """Thin optional wrapper over ``torch.utils.tensorboard.SummaryWriter``.

    ``available`` is False (and every call a no-op) when the ``tensorboard`` package is
    not installed.
    """

    def __init__(self, logdir: str | os.PathLike, enabled: bool = True, purge_step: Optional[int] = None):
        self._w = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
        except Exception:  # ImportError, or a broken optional install
            return
        self._w = SummaryWriter(str(logdir), purge_step=purge_step)

    @property
    def available(self) -> bool:
        return self._w is not None

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        if self._w is None:
            return
        for k, v in values.items():
            self._w.add_scalar(k, v, step)

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
