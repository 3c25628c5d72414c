"""`unifuse fuse` with three or more images, --stack/--stacks, --align and the transforms file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from unifuse.cli.main import main
from unifuse.data.stacks import make_stack
from unifuse.io import read_image


def _save(path, arr):
    a = np.floor(np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
    Image.fromarray(a).save(path)
    return str(path)


@pytest.fixture(scope="module")
def bracket(tmp_path_factory):
    d = tmp_path_factory.mktemp("bracket")
    st = make_stack("chelsea", "MEF", 3, max_side=40)
    return [_save(d / f"f{k}.png", f) for k, f in enumerate(st.frames)], st


def _psnr(x, y):
    return 10 * np.log10(1.0 / np.mean((x.astype(np.float64) - y) ** 2))


@pytest.mark.parametrize("model", ["laplacian", "tita"])
def test_three_image_bracket(tmp_path, capsys, bracket, model):
    files, st = bracket
    out = tmp_path / "f.png"
    assert main(["fuse", *files, "-o", str(out), "--model", model]) == 0
    msg = capsys.readouterr().out
    assert "3 frames, reference 2" in msg
    fused = read_image(out).data
    assert fused.shape == st.ground_truth.shape
    # better than the worst source against the ground truth: it fused something
    assert _psnr(fused, st.ground_truth) > min(_psnr(f, st.ground_truth) for f in st.frames) + 3


def test_stack_and_stacks_folders(tmp_path, capsys, bracket):
    files, _ = bracket
    root = tmp_path / "stacks"
    for name, fs in (("good", files), ("tiny", files[:1])):
        (root / name).mkdir(parents=True)
        for f in fs:
            (root / name / Image.open(f).filename.split("/")[-1]).write_bytes(open(f, "rb").read())
    assert main(["fuse", "--stack", str(root / "good"), "-o", str(tmp_path / "one.png"), "--model", "mertens"]) == 0
    rc = main(["fuse", "--stacks", str(root), "-o", str(tmp_path / "out"), "--model", "mertens", "--ext", "jpg"])
    err = capsys.readouterr().err
    assert rc == 1 and "tiny" in err and "at least two images" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.jpg"]


@pytest.mark.parametrize("model,side", [("laplacian", 128), ("tita", 80)])
def test_align_homography_repairs_a_handheld_pair(tmp_path, model, side):
    """A shifted + rotated exposure pair: aligned fusion matches the fusion of the truly aligned pair."""
    st = make_stack("chelsea", "MEF", 2, seed=3, moving=True, max_side=side, max_shift=5.0, max_rotation=2.0)
    st_ref = 0
    files = [_save(tmp_path / f"p{k}.png", f) for k, f in enumerate(st.frames)]
    truth = {"format": "unifuse-transforms", "version": 1, "motion": "homography", "reference": st_ref,
             "size": [st.frames[0].shape[1], st.frames[0].shape[0]],
             "frames": [{"source": f, "size": [st.frames[0].shape[1], st.frames[0].shape[0]], "matrix": m.tolist()}
                        for f, m in zip(files, st.transforms)]}
    (tmp_path / "true.json").write_text(json.dumps(truth))
    run = lambda out, *extra: main(["fuse", *files, "-o", str(tmp_path / out), "--model", model, *extra])  # noqa: E731
    assert run("none.png") == 0
    assert run("aligned.png", "--align", "homography", "--save-transforms", str(tmp_path / "est.json")) == 0
    assert run("oracle.png", "--transforms", str(tmp_path / "true.json")) == 0
    none, aligned, oracle = (read_image(tmp_path / n).data[10:-10, 10:-10] for n in ("none.png", "aligned.png", "oracle.png"))
    gain = _psnr(aligned, oracle) - _psnr(none, oracle)
    print(f"{model}: PSNR to the truly aligned fusion: aligned {_psnr(aligned, oracle):.2f} dB, "
          f"unaligned {_psnr(none, oracle):.2f} dB")
    assert _psnr(aligned, oracle) > 35 and gain > 12, (_psnr(aligned, oracle), gain)
    if model == "laplacian":  # the saved transforms reproduce the result
        assert run("again.png", "--transforms", str(tmp_path / "est.json")) == 0
        np.testing.assert_array_equal(aligned, read_image(tmp_path / "again.png").data[10:-10, 10:-10])
    est = json.loads((tmp_path / "est.json").read_text())
    assert est["reference"] == 0 and est["frames"][0]["method"] == "identity"


@pytest.mark.parametrize("argv,needle", [
    (["{f0}"], "at least two images, got 1"),
    (["{f0}", "{small}", "{f1}"], "sizes differ"),
    (["{f0}", "{f1}", "{corrupt}"], "corrupt.png"),
    (["{f0}", "{f1}", "{f2}", "--save-transforms", "t.json"], "--save-transforms needs --align"),
    (["{f0}", "{f1}", "{f2}", "--reference", "0"], "1-based"),
    (["{f0}", "{f1}", "{f2}", "--reference", "7", "--model", "max"], "does not exist"),
    (["{f0}", "{f1}", "{f2}", "--transforms", "missing.json"], "not found"),
    (["{f0}", "{f1}", "{noise}", "--align", "affine"], "cannot align"),
    (["--stack", "{f0}"], "folder not found"),
    (["--a", "x", "--b", "y", "--align", "affine"], "folder pairs take no stack"),
])
def test_bad_stack_input_one_line_error(tmp_path, capsys, monkeypatch, bracket, argv, needle):
    monkeypatch.chdir(tmp_path)
    files, st = bracket
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG garbage")
    small = _save(tmp_path / "small.png", st.frames[0][:20, :20])
    noise = _save(tmp_path / "noise.png", np.random.default_rng(0).random(st.frames[0].shape))
    subs = {"{f0}": files[0], "{f1}": files[1], "{f2}": files[2], "{small}": small,
            "{corrupt}": str(tmp_path / "corrupt.png"), "{noise}": noise}
    argv = ["fuse", *[subs.get(x, x) for x in argv], "-o", str(tmp_path / "out.png")]
    if "--model" not in argv:
        argv += ["--model", "laplacian"]
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc != 0 and needle in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "t.json").exists()  # nothing half-written


def test_mixed_bit_depths_are_raised_to_16(tmp_path, capsys, bracket):
    files, _ = bracket
    a16 = (read_image(files[0]).data * 65535).astype(np.uint16)
    Image.fromarray(a16[..., 0]).save(tmp_path / "deep.png")  # 16-bit gray
    g8 = np.asarray(Image.open(files[1]).convert("L"))
    Image.fromarray(g8).save(tmp_path / "g8.png")
    out = tmp_path / "o.png"
    assert main(["fuse", str(tmp_path / "deep.png"), str(tmp_path / "g8.png"), files[2], "-o", str(out),
                 "--model", "average"]) == 0
    assert "mixed bit depths" in capsys.readouterr().err
    assert read_image(out).bit_depth == 16
