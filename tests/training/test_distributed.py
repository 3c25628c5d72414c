"""Data-parallel training: 2 CPU processes over gloo (127.0.0.1) == 1 process at the same global batch,
including a non-finite batch that every rank must skip together."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training_helpers import ddp_config_dict, poison_batches, run_gloo_ranks

from unifuse.training.checkpoint import load_checkpoint
from unifuse.training.config import from_dict
from unifuse.training.logging import read_csv
from unifuse.models import create_model
from unifuse.training.trainer import Trainer, seed_everything

HERE = Path(__file__).resolve().parent
ITERS = 3


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(), reason="gloo backend not available")
def test_two_gloo_processes_match_single_process(tiny_data, tmp_path):
    run_gloo_ranks([sys.executable, str(HERE / "ddp_worker.py"), str(tiny_data), str(tmp_path / "ddp"), str(ITERS)])

    single = Trainer(from_dict(ddp_config_dict(tiny_data, ITERS)), tmp_path / "single")
    poison_batches(single, at_step=2, task="MFF", global_index=2)
    single.fit()

    for f in ("model.safetensors", "model_ema.safetensors"):
        ddp, single = load_file(tmp_path / "ddp" / f), load_file(tmp_path / "single" / f)
        assert ddp.keys() == single.keys()
        for k in ddp:
            torch.testing.assert_close(ddp[k], single[k], rtol=1e-5, atol=1e-6, msg=f"{f}:{k}")
    seed_everything(5)  # the config's seed: the initial weights of both runs
    init = create_model("toy_fuser", dropout=0.0).state_dict()
    trained = load_file(tmp_path / "ddp" / "model.safetensors")
    assert not torch.allclose(init["inp.weight"], trained["inp.weight"])  # training did move the weights
    # per-task losses (computed on the gathered global batch), FAMO weights and gradient angles agree
    for name, n_rows in (("train_log.csv", ITERS), ("conflicts.csv", ITERS - 1)):  # no diagnostics on the skipped step
        a, b = read_csv(tmp_path / "ddp" / name), read_csv(tmp_path / "single" / name)
        assert len(a) == len(b) == n_rows
        for ra, rb in zip(a, b):
            for k in ra:
                if k == "time_s" or ra[k] == rb[k]:  # e.g. both empty (no re-evaluation on a skipped step)
                    continue
                x, y = float(ra[k]), float(rb[k])
                assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-5, abs=1e-6), (name, k, x, y)
    # the NaN sample of rank 1 made both ranks skip iteration 2 (no deadlock) and was named
    assert [r["skipped"] for r in read_csv(tmp_path / "ddp" / "train_log.csv")] == ["0", "1", "0"]
    assert "non-finite values in" in (tmp_path / "ddp" / "events.log").read_text()
    # the checkpoint holds both ranks' sampler and RNG states
    state = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "step_00000002")["state"]
    assert state["world_size"] == 2 and len(state["ranks"]) == 2

    # the 2-process run resumed by one process: one warning about the process count, the run goes on
    with pytest.warns(UserWarning, match="written by 2 process"):
        resumed = Trainer(from_dict(ddp_config_dict(tiny_data, ITERS + 2)), tmp_path / "ddp", resume=True)
    assert resumed.step == ITERS
    resumed.fit()
    assert [int(r["step"]) for r in read_csv(tmp_path / "ddp" / "train_log.csv")] == list(range(1, ITERS + 3))
