"""`unifuse degrade`: pair and folder modes, determinism, record, untouched inputs, clean errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from unifuse.cli.degrade import pair_seed
from unifuse.cli.main import main
from unifuse.data.degrade import degrade_pair
from unifuse.io import read_image


def _img(path, shape=(40, 48, 3), seed=0, bits=8):
    rng = np.random.default_rng(seed)
    if bits == 16:
        arr = (rng.random(shape) * 65535).astype(np.uint16)
        Image.fromarray(arr).save(path)
    else:
        arr = (rng.random(shape) * 255).astype(np.uint8)
        Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB").save(path)
    return path


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_pair_mode_writes_record_and_is_byte_identical(tmp_path, capsys):
    a, b = _img(tmp_path / "vis.png"), _img(tmp_path / "ir.png", (40, 48), seed=1, bits=16)
    before = (a.read_bytes(), b.read_bytes())
    for out in ("o1", "o2"):
        assert main(["degrade", str(a), str(b), "-o", str(tmp_path / out), "--task", "ivf", "--seed", "5",
                     "--types", "rain,noise", "--threads", "1"]) == 0
    assert (a.read_bytes(), b.read_bytes()) == before  # inputs untouched
    for sub in ("a/vis.png", "b/ir.png", "degradations.csv"):
        assert (tmp_path / "o1" / sub).read_bytes() == (tmp_path / "o2" / sub).read_bytes()
    ia, ib = read_image(tmp_path / "o1/a/vis.png"), read_image(tmp_path / "o1/b/ir.png")
    assert ia.data.shape == (40, 48, 3) and ia.bit_depth == 8
    assert ib.data.shape == (40, 48) and ib.bit_depth == 16  # bit depth kept
    (row,) = _rows(tmp_path / "o1/degradations.csv")
    assert row["types"] == "rain;noise" and row["task"] == "ivf" and row["seed"] == "5"
    assert int(row["pair_seed"]) == pair_seed(5, "vis")
    params = json.loads(row["params"])
    assert set(params) == {"rain", "noise"} and params["noise"]["a"]["sigma"] > 0
    # the record is the library's: same pair seed -> same result as degrade_pair
    import torch
    ref = degrade_pair(torch.from_numpy(read_image(a).data).permute(2, 0, 1).contiguous(),
                       torch.from_numpy(read_image(b).data)[None], "ivf", seed=int(row["pair_seed"]), types=["rain", "noise"])
    assert ref.prompt == row["prompt"] and json.loads(json.dumps(ref.params, sort_keys=True)) == params
    assert np.abs(ia.data - ref.a.permute(1, 2, 0).numpy()).max() <= 0.5 / 255 + 1e-6
    # another seed -> other outputs
    assert main(["degrade", str(a), str(b), "-o", str(tmp_path / "o3"), "--task", "ivf", "--seed", "6", "--types", "rain,noise"]) == 0
    assert (tmp_path / "o3/a/vis.png").read_bytes() != (tmp_path / "o1/a/vis.png").read_bytes()


def test_folder_mode_order_independent_and_skips_bad_pairs(tmp_path, capsys):
    da, db = tmp_path / "A", tmp_path / "B"
    da.mkdir(), db.mkdir()
    for i in range(3):
        _img(da / f"p{i}.png", seed=i)
        _img(db / f"p{i}.png", seed=10 + i)
    _img(db / "p2.png", (10, 10, 3))  # size mismatch
    _img(da / "lonely.png")
    rc = main(["degrade", "--a", str(da), "--b", str(db), "-o", str(tmp_path / "out"), "--task", "mef", "--seed", "9"])
    err = capsys.readouterr().err
    assert rc == 1 and "p2" in err and "lonely" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out/a").iterdir()) == ["p0.png", "p1.png"]
    rows = _rows(tmp_path / "out/degradations.csv")
    assert [r["name_a"] for r in rows] == ["p0.png", "p1.png"]
    # pair mode on one pair gives the same bytes as folder mode (seed from (seed, stem), not position)
    assert main(["degrade", str(da / "p1.png"), str(db / "p1.png"), "-o", str(tmp_path / "single"), "--task", "mef", "--seed", "9"]) == 0
    assert (tmp_path / "single/a/p1.png").read_bytes() == (tmp_path / "out/a/p1.png").read_bytes()
    assert (tmp_path / "single/b/p1.png").read_bytes() == (tmp_path / "out/b/p1.png").read_bytes()
    # a second run into the same folder keeps the record of the other pairs
    assert main(["degrade", str(da / "p0.png"), str(db / "p0.png"), "-o", str(tmp_path / "single"), "--task", "mef", "--seed", "9"]) == 0
    assert [r["name_a"] for r in _rows(tmp_path / "single/degradations.csv")] == ["p0.png", "p1.png"]


@pytest.mark.parametrize("extra,needle", [
    (["--types", "fog"], "valid types: haze, rain"),
    (["--types", "high_exposure"], "valid for ivf"),
    (["--task", "pan"], "choose one of: ivf, mef, mff"),
    (["--n", "0-4"], "within 1-3"),
    (["--n", "2", "--types", "noise"], "not both"),
])
def test_bad_options_one_line_error(tmp_path, capsys, extra, needle):
    a, b = _img(tmp_path / "a.png"), _img(tmp_path / "b.png", seed=1)
    argv = ["degrade", str(a), str(b), "-o", str(tmp_path / "o")]
    argv += extra if "--task" in extra else ["--task", "ivf"] + extra
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_refuses_to_overwrite_inputs(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    a, b = _img(tmp_path / "a" / "x.png"), _img(tmp_path / "y.png", seed=1)
    before = a.read_bytes()
    assert main(["degrade", str(a), str(b), "-o", str(tmp_path), "--task", "ivf"]) == 1
    assert "overwrite" in capsys.readouterr().err and a.read_bytes() == before


def test_list(capsys):
    assert main(["degrade", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("haze", "ir_strips", "jpeg", "high_exposure"):
        assert name in out
    line = next(l for l in out.splitlines() if l.startswith("ir_strips"))
    assert "ivf" in line and "mef" not in line
    assert "U(0.8, 2.8)" in out
