"""The shared steps of the weight-shipping scripts (:mod:`unifuse.training.ship`)."""

from __future__ import annotations

import hashlib
import json

import pytest

from unifuse.errors import ConfigError
from unifuse.training.ship import checkpoint_state, file_sha256, machine_description, run_checkpoint


def _checkpoint(run, step):
    d = run / "checkpoints" / f"step_{step:08d}"
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"")
    (d / "state.json").write_text(json.dumps({"step": step, "state": {"config": {"name": f"recipe{step}"}}}))
    return d


def test_run_checkpoint_newest_or_by_step_and_its_state(tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint$"):
        run_checkpoint(tmp_path)
    first, second = _checkpoint(tmp_path, 50), _checkpoint(tmp_path, 100)
    assert run_checkpoint(tmp_path) == second and run_checkpoint(tmp_path, 50) == first
    with pytest.raises(ConfigError, match="no checkpoint for step 75"):
        run_checkpoint(tmp_path, 75)
    assert checkpoint_state(first) == (50, {"name": "recipe50"})


def test_sha256_and_machine_description(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"unifuse")
    assert file_sha256(f) == hashlib.sha256(b"unifuse").hexdigest()
    assert machine_description("2-core test box") == "2-core test box"
    assert machine_description().endswith("cores, CPU only")
