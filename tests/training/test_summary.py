"""training.summary.loss_table: per-block means of a run's log, as Markdown."""

from __future__ import annotations

import pytest

from unifuse.errors import ConfigError
from unifuse.training.logging import CSVLog
from unifuse.training.summary import loss_table


def _log(tmp_path, rows):
    log = CSVLog(tmp_path / "train_log.csv", ["step", "time_s", "skipped", "loss_IVF", "loss_MEF", "weight_IVF", "weight_MEF"])
    for r in rows:
        log.write(r)
    log.close()


def test_blocks_average_losses_skip_skipped_rows_and_time_per_iteration(tmp_path):
    rows = [
        {"step": 1, "time_s": 2.0, "skipped": 0, "loss_IVF": 4.0, "loss_MEF": 8.0, "weight_IVF": 0.5, "weight_MEF": 0.5},
        {"step": 2, "time_s": 4.0, "skipped": 1, "loss_IVF": "nan", "loss_MEF": 100.0, "weight_IVF": 0.5, "weight_MEF": 0.5},
        {"step": 3, "time_s": 6.0, "skipped": 0, "loss_IVF": 2.0, "loss_MEF": 6.0, "weight_IVF": 0.4, "weight_MEF": 0.6},
        {"step": 4, "time_s": 10.0, "skipped": 0, "loss_IVF": 1.0, "loss_MEF": 5.0, "weight_IVF": 0.3, "weight_MEF": 0.7},
        {"step": 5, "time_s": 15.0, "skipped": 0, "loss_IVF": 3.0, "loss_MEF": 1.0, "weight_IVF": 0.2, "weight_MEF": 0.8},
    ]
    _log(tmp_path, rows)
    lines = loss_table(tmp_path, 3).splitlines()
    assert lines[0] == "| iterations | mean IVF loss | mean MEF loss | weights (IVF / MEF) at the end | s / iteration |"
    # block 1-3: step 2 skipped -> means of steps 1 and 3; 6 s over 3 iterations
    assert lines[2] == "| 1–3 | 3.00 | 7.00 | 0.400 / 0.600 | 2.0 |"
    # last, shorter block 4-5: 9 s over 2 iterations
    assert lines[3] == "| 4–5 | 2.00 | 3.00 | 0.200 / 0.800 | 4.5 |"
    assert len(lines) == 4


def test_bad_block_and_missing_log(tmp_path):
    with pytest.raises(ConfigError, match="train_log.csv"):
        loss_table(tmp_path, 10)
    _log(tmp_path, [])
    with pytest.raises(ConfigError, match="no rows"):
        loss_table(tmp_path, 10)
    with pytest.raises(ConfigError, match="block"):
        loss_table(tmp_path, 0)
