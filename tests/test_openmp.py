"""unifuse/_openmp.py: a short GNU OpenMP spin when unifuse is imported before torch, unless set."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from unifuse import _openmp


@pytest.fixture
def clean_env(monkeypatch):
    for k in _openmp._KEYS:
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def test_set_before_torch_loads(clean_env):
    clean_env.delitem(sys.modules, "torch")  # as in a fresh process (restored afterwards)
    assert _openmp.prefer_short_openmp_spin()
    assert os.environ["GOMP_SPINCOUNT"] == _openmp.SPIN_COUNT


def test_too_late_once_torch_is_loaded(clean_env):
    assert "torch" in sys.modules
    assert not _openmp.prefer_short_openmp_spin()
    assert not any(k in os.environ for k in _openmp._KEYS)


@pytest.mark.parametrize("key,value", [("OMP_WAIT_POLICY", "ACTIVE"), ("GOMP_SPINCOUNT", "1000"), ("KMP_BLOCKTIME", "0")])
def test_an_explicit_setting_wins(clean_env, key, value):
    clean_env.delitem(sys.modules, "torch")
    clean_env.setenv(key, value)
    assert not _openmp.prefer_short_openmp_spin()
    assert {k: os.environ[k] for k in _openmp._KEYS if k in os.environ} == {key: value}


def test_import_unifuse_first_in_a_fresh_process():
    env = {k: v for k, v in os.environ.items() if k not in _openmp._KEYS}
    code = "import unifuse, os, sys; print(os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [_openmp.SPIN_COUNT, "True"]
