"""The metrics' accelerator implementations (whole-tensor PyTorch, taken on CUDA) give the
values of the CPU-tuned ones (scipy / numpy transforms, bands, worker threads): run on the
CPU through :func:`unifuse.backend.accelerator_paths`, and on a real GPU where there is one."""

from __future__ import annotations

import math

import pytest
import scipy.fft
import torch
from _metric_refs import load_triple, read_rows, rel

from unifuse import metrics as M
from unifuse.backend import accelerator_paths, cpu_tuned
from unifuse.metrics.functional import elementwise

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _crop_triple(data_dir):
    return load_triple(data_dir, "VIFB-crop", "carShadow", "GFF")


def _same(got: dict, want: dict, rtol: float) -> None:
    assert list(got) == list(want)
    for name in want:
        for g, w in zip(got[name].cpu().tolist(), want[name].cpu().tolist()):
            if math.isnan(w):
                assert math.isnan(g), name
            else:
                assert abs(g - w) <= rtol * max(abs(w), 1e-12), (name, g, w)


def test_switch():
    t = torch.zeros(1)
    assert cpu_tuned(t) and cpu_tuned("cpu") and not cpu_tuned("cuda")
    with accelerator_paths():
        assert not cpu_tuned(t) and not cpu_tuned(torch.device("cpu"))
    assert cpu_tuned(t)


@pytest.mark.parametrize("mode", ["native", "gray"])
def test_default_suite_equal_on_both_paths(data_dir, mode, monkeypatch):
    a, b, f = _crop_triple(data_dir)
    names = M.default_metrics()
    want = M.evaluate_batch(f, a, b, metrics=names, mode=mode)

    def host_only(*args, **kw):
        raise AssertionError("a CPU-only routine ran on the accelerator path")

    for fn in ("rfft2", "irfft2"):  # pocketfft on numpy arrays: the CPU-tuned transforms
        monkeypatch.setattr(scipy.fft, fn, host_only)
    monkeypatch.setattr(elementwise.np, "sqrt", host_only)
    with accelerator_paths():
        got = M.evaluate_batch(f, a, b, metrics=names, mode=mode)
    _same(got, want, 1e-10)


def test_qp_accelerator_path_matches_the_matlab_reference(reference_dir, data_dir):
    """Phase congruency is the metric whose two paths differ most (torch.fft vs pocketfft,
    whole maps vs bands): its accelerator path against MEFB's MATLAB values."""
    rows = [r for r in read_rows(reference_dir / "mefb_metrics_dev.csv") if r["dataset"] == "VIFB-crop"][:3]
    assert rows
    m = M.create("qp")
    for r in rows:
        a, b, f = load_triple(data_dir, r["dataset"], r["image"], r["method"])
        with accelerator_paths():
            v = float(m(a, b, f, mode="gray")[0])
        assert rel(v, float(r["mefb.Qp"])) < 1e-9, (r["image"], r["method"], v)


@needs_cuda
def test_default_suite_on_cuda_equals_cpu(data_dir):
    a, b, f = _crop_triple(data_dir)
    names = M.default_metrics()
    want = M.evaluate_batch(f, a, b, metrics=names)
    got = M.evaluate_batch(f.cuda(), a.cuda(), b.cuda(), metrics=names)
    assert all(v.device.type == "cuda" for v in got.values())
    _same(got, want, 1e-9)
