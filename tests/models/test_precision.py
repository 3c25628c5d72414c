"""The bf16 decision on CPU (``unifuse.models.precision``), with the CPU capability mocked both ways."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import unifuse
from unifuse.cli.main import main
from unifuse.models import precision as prec


@pytest.fixture
def cpu_support(monkeypatch):
    """Set what :func:`cpu_bf16_support` answers, and forget which notices were said."""
    monkeypatch.setattr(prec, "_SAID", set())

    def set_support(value):
        monkeypatch.setattr(prec, "cpu_bf16_support", lambda: value)

    return set_support


def test_no_native_bf16_runs_fp32_and_says_so_once(cpu_support):
    cpu_support(None)
    with pytest.warns(prec.PrecisionNotice, match="no native bf16.*running in fp32"):
        net = unifuse.load_model("tita", weights="random", precision="bf16")
    assert net._precision == torch.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second request is silent
        assert unifuse.load_model("tita", weights="random", precision="bf16")._precision == torch.float32


def test_native_bf16_is_used(cpu_support):
    cpu_support("AVX512_BF16")
    with pytest.warns(prec.PrecisionNotice, match="native AVX512_BF16"):
        net = unifuse.load_model("tita", weights="random", precision="bf16")
    assert net._precision == torch.bfloat16


def test_other_requests_unchanged(cpu_support):
    cpu_support(None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert prec.resolve_precision("fp32", "cpu") == "fp32"
        assert prec.resolve_precision("bf16", "meta") == "bf16"  # not a CPU: no decision here
        unifuse.load_model("average", precision="bf16")  # training-free: computes in fp32, nothing to say


def test_cpu_flags_probe(monkeypatch):
    prec.cpu_bf16_support.cache_clear()
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    try:
        monkeypatch.setattr(prec, "_cpuinfo_flags", lambda: {"avx2", "fma"})
        assert prec.cpu_bf16_support() is None
        prec.cpu_bf16_support.cache_clear()
        monkeypatch.setattr(prec, "_cpuinfo_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
        assert prec.cpu_bf16_support() == "AVX512_BF16"
        prec.cpu_bf16_support.cache_clear()
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
        assert prec.cpu_bf16_support() == "AMX"
    finally:
        prec.cpu_bf16_support.cache_clear()


def test_cli_notice_is_one_line(cpu_support, tmp_path, capsys, reference_dir):
    cpu_support(None)
    ref = torch.load(reference_dir / "tita_official_case1.pt", weights_only=True)
    torch.save(ref["state_dict"], tmp_path / "w.pth")
    for name in ("a.png", "b.png"):
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 24), dtype=np.uint8)).save(tmp_path / name)
    assert main(["fuse", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "f.png"),
                 "--weights", str(tmp_path / "w.pth"), "--precision", "bf16"]) == 0
    err = capsys.readouterr().err
    assert "unifuse: note: bf16 requested, but this CPU has no native bf16" in err
    assert err.count("\n") == 1
