"""CSV logs (resume truncation, partial rows) and the PIL plots."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from unifuse.training.logging import CSVLog, TensorBoardLog, read_columns, read_csv
from unifuse.training.plot import PALETTE, _tint, auto_smooth, line_plot, moving_average, nice_ticks, plot_training


def test_csv_resume_drops_rows_after_the_checkpoint(tmp_path):
    p = tmp_path / "log.csv"
    log = CSVLog(p, ["step", "loss"])
    for s in range(1, 6):
        log.write({"step": s, "loss": 1.0 / s})
    log.close()
    with open(p, "a") as f:
        f.write("6,0.1")  # a run killed mid-row
    assert [r["step"] for r in read_csv(p)] == ["1", "2", "3", "4", "5"]
    log = CSVLog(p, ["step", "loss"], resume_step=3)
    log.write({"step": 4, "loss": 9.0})
    log.close()
    assert [(r["step"], float(r["loss"])) for r in read_csv(p)] == [("1", 1.0), ("2", 0.5), ("3", 1 / 3), ("4", 9.0)]
    assert read_columns(p)["loss"][1] == 0.5
    CSVLog(p, ["step", "loss"]).close()  # a fresh run overwrites
    assert read_csv(p) == []


def test_tensorboard_is_optional(tmp_path):
    tb = TensorBoardLog(tmp_path / "tb", enabled=False)
    assert not tb.available
    tb.scalars(1, {"x": 1.0})
    tb.close()


def test_nice_ticks():
    assert nice_ticks(0, 20000) == [0, 5000, 10000, 15000, 20000]
    assert nice_ticks(0, 180, 6) == [0, 50, 100, 150]  # raw step 30 -> next of 1, 2, 2.5, 5 x 10^k is 50
    t = nice_ticks(0.013, 0.92)
    assert all(0.013 <= x <= 0.92 for x in t) and len(t) >= 3


def test_line_plot_draws_each_series_in_its_colour(tmp_path):
    x = list(range(100))
    path = line_plot({"up": (x, [i * 0.1 for i in x]), "gap": (x, [math.nan if 40 < i < 60 else 5.0 for i in x])},
                     tmp_path / "p.png", "title", "iteration", "value", size=(400, 300))
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape == (300, 400, 3)
    for colour in PALETTE[:2]:
        rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        assert (np.abs(img.astype(int) - rgb).sum(-1) < 30).sum() > 50, colour


def test_plot_training_writes_the_four_figures(tmp_path):
    log = CSVLog(tmp_path / "train_log.csv", ["step", "loss_IVF", "loss_MFF", "weight_IVF", "weight_MFF"])
    conf = CSVLog(tmp_path / "conflicts.csv", ["step", "gradnorm_IVF", "gradnorm_MFF", "angle_IVF_MFF"])
    for s in range(1, 30):
        log.write({"step": s, "loss_IVF": 10 / s, "loss_MFF": 5 / s, "weight_IVF": 0.5 + s / 100, "weight_MFF": 0.5 - s / 100})
        conf.write({"step": s, "gradnorm_IVF": 1.0, "gradnorm_MFF": 2.0, "angle_IVF_MFF": 80 + s})
    log.close()
    conf.close()
    out = plot_training(tmp_path)
    assert sorted(p.name for p in out) == ["conflicts.png", "gradnorms.png", "losses.png", "weights.png"]
    assert all(Image.open(p).size == (900, 520) for p in out)


def test_moving_average_is_trailing_and_skips_non_finite_values():
    got = moving_average([1.0, 3.0, math.nan, 5.0, 7.0], 2)
    assert got == [1.0, 2.0, 3.0, 5.0, 6.0]  # window (3, nan) -> 3; (nan, 5) -> 5
    assert math.isnan(moving_average([math.nan, math.nan, 2.0], 2)[1])
    assert moving_average([4.0, 2.0], 10) == [4.0, 3.0]
    assert auto_smooth(100) == 0 and auto_smooth(249) == 0 and auto_smooth(250) == 5 and auto_smooth(20000) == 400


def _count_colour(img: np.ndarray, colour: str) -> int:
    rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return int((np.abs(img.astype(int) - rgb).sum(-1) < 20).sum())


def test_plot_training_smooth_draws_the_mean_over_the_faint_raw_losses(tmp_path):
    log = CSVLog(tmp_path / "train_log.csv", ["step", "loss_IVF", "loss_MFF"])
    rng = np.random.default_rng(0)
    for s in range(1, 301):
        log.write({"step": s, "loss_IVF": 10 / s**0.5 * (1 + 0.5 * rng.random()), "loss_MFF": 5 / s**0.5 * (1 + 0.5 * rng.random())})
    log.close()
    raw = np.asarray(Image.open(plot_training(tmp_path, tmp_path / "raw", smooth=0)[0]).convert("RGB"))
    auto = np.asarray(Image.open(plot_training(tmp_path, tmp_path / "auto")[0]).convert("RGB"))  # 300 rows: window 6
    for colour in PALETTE[:2]:
        assert _count_colour(raw, colour) > 200 and _count_colour(auto, colour) > 200
        # raw only: the light tint appears on anti-aliased edges alone; smoothed: the raw curves are drawn in it
        assert _count_colour(auto, _tint(colour)) > 1.5 * _count_colour(raw, _tint(colour)), colour


def test_line_plot_draws_faint_series_in_a_tint_of_their_colour(tmp_path):
    x, kw = list(range(50)), dict(size=(400, 300), ylim=(0.0, 4.0))
    plain = np.asarray(Image.open(line_plot({"a": (x, [1.0] * 50)}, tmp_path / "plain.png", **kw)).convert("RGB")).astype(int)
    both = np.asarray(Image.open(line_plot({"a": (x, [1.0] * 50)}, tmp_path / "both.png", faint={"a": (x, [3.0] * 50)}, **kw)).convert("RGB")).astype(int)
    changed = np.abs(both - plain).sum(-1) > 30
    rows = np.nonzero(changed.sum(1) > 100)[0]  # the faint line: y = 3, half the plot height above y = 1
    main_row = np.argmin(np.abs(plain - (0x1F, 0x77, 0xB4)).sum(-1)[:, 200])
    assert rows.size and rows.max() < main_row - 80
    tint = np.array([int(_tint(PALETTE[0])[i:i + 2], 16) for i in (1, 3, 5)])
    assert np.abs(both[rows] - tint).sum(-1).min(1).max() < 60  # drawn in the light tint of series a's colour


def test_wall_time_at_reads_the_last_row_up_to_the_step(tmp_path):
    from unifuse.training.logging import wall_time_at

    assert wall_time_at(tmp_path, 5) is None  # no log
    (tmp_path / "train_log.csv").write_text("step,time_s\n1,2.5\n2,5.0\n3,7.5\n4,10")  # last line cut mid-write
    assert wall_time_at(tmp_path, 2) == 5.0
    assert wall_time_at(tmp_path, 9) == 7.5  # the partial row is not read
    assert wall_time_at(tmp_path, 0) is None
