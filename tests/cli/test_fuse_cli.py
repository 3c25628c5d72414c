"""`unifuse fuse` / `models` on good and bad inputs, run in-process and as a console command (`demo`: test_demo_cli.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from unifuse.cli.main import main


def _img(path, shape=(24, 32), seed=0, mode="L"):
    rng = np.random.default_rng(seed)
    arr = (rng.random(shape) * 255).astype(np.uint8)
    Image.fromarray(arr, mode if arr.ndim == 2 else "RGB").save(path)
    return path


def test_pair_mode(tmp_path, capsys):
    a, b = _img(tmp_path / "a.png"), _img(tmp_path / "b.jpg", (24, 32, 3), seed=1)
    out = tmp_path / "out" / "f.png"
    assert main(["fuse", str(a), str(b), "-o", str(out), "--model", "laplacian"]) == 0
    im = Image.open(out)
    assert im.size == (32, 24) and im.mode == "RGB"
    before = torch.get_num_threads()
    try:
        assert main(["fuse", str(a), str(b), "-o", str(tmp_path / "g.png"), "--model", "average", "--color", "gray",
                     "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert Image.open(tmp_path / "g.png").mode == "L"


def test_folder_mode_skips_bad_pairs(tmp_path, capsys):
    da, db, out = tmp_path / "A", tmp_path / "B", tmp_path / "out"
    da.mkdir(), db.mkdir()
    for i in range(3):
        _img(da / f"p{i}.png", seed=i)
        _img(db / f"p{i}.png", seed=10 + i)
    (db / "p1.png").write_bytes(b"corrupt")  # a corrupt partner
    _img(da / "lonely.png")  # an unpaired name
    _img(db / "p2.png", shape=(10, 10))  # mismatched size
    rc = main(["fuse", "--a", str(da), "--b", str(db), "-o", str(out), "--model", "max"])
    err = capsys.readouterr().err
    assert rc == 1
    assert sorted(p.name for p in out.iterdir()) == ["p0.png"]  # nothing half-written
    assert "lonely" in err and "p1" in err and "p2" in err and "Traceback" not in err
    # with --resize-to the size mismatch is accepted
    rc = main(["fuse", "--a", str(da), "--b", str(db), "-o", str(out), "--model", "max", "--resize-to", "a"])
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p2.png"]


@pytest.mark.parametrize("argv,needle", [
    (["fuse", "missing_a.png", "missing_b.png", "-o", "x.png", "--model", "max"], "missing_a.png: file not found"),
    (["fuse", "--a", "nodir", "--b", "nodir2", "-o", "out", "--model", "max"], "nodir: folder not found"),
    (["fuse", "--a", "{empty}", "--b", "{empty}", "-o", "out", "--model", "max"], "no images"),
    (["fuse", "{a}", "{b}", "-o", "x.png", "--model", "nonexistent"], "unknown model"),
    (["fuse", "{a}", "{b}", "-o", "x.png", "--model", "max", "--tile", "5"], "--tile"),
    (["fuse", "{a}", "{b}", "-o", "x.xyz", "--model", "max"], "unsupported output format"),
    (["fuse", "{a}", "{corrupt}", "-o", "x.png", "--model", "max"], "corrupt.png"),
    (["fuse", "{a}", "{small}", "-o", "x.png", "--model", "max"], "sizes differ"),
    (["fuse", "{a}", "{b}", "-o", "x.png", "--weights", "{corrupt}"], "cannot read weights"),
    pytest.param(["fuse", "{a}", "{b}", "-o", "x.png", "--device", "cuda:0", "--model", "max"], "cuda",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")),
    (["fuse", "{a}", "{b}", "-o", "x.png", "--model", "max", "--threads", "0"], "--threads must be a positive integer"),
])
def test_bad_input_one_line_error(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG garbage")
    subs = {"{a}": str(_img(tmp_path / "a.png")), "{b}": str(_img(tmp_path / "b.png", seed=2)),
            "{small}": str(_img(tmp_path / "small.png", (8, 8))), "{corrupt}": str(tmp_path / "corrupt.png"),
            "{empty}": str(tmp_path / "empty")}
    argv = [subs.get(x, x) for x in argv]
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert needle in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_models_lists_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("tita", "tita_baseline", "average", "max", "laplacian", "mertens"):
        assert name in out


def test_console_entry_point_and_argparse_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "unifuse", "fuse", "--a", "x"], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "unifuse", "fuse", "a", "b", "-o", "o.png", "--color", "pink"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr



@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fuse_on_cuda_equals_cpu(tmp_path):
    """The shipped TITA through ``--device cuda``: the same 8-bit image as on the CPU (±1 level)."""
    a, b = _img(tmp_path / "a.png", (40, 56)), _img(tmp_path / "b.png", (40, 56), seed=3)
    outs = {}
    for dev in ("cpu", "cuda"):
        outs[dev] = tmp_path / f"{dev}.png"
        assert main(["fuse", str(a), str(b), "-o", str(outs[dev]), "--device", dev]) == 0
    x, y = (np.asarray(Image.open(outs[d]), dtype=np.int16) for d in ("cpu", "cuda"))
    assert x.shape == y.shape == (40, 56) and np.abs(x - y).max() <= 1
