"""Trainer: exact resume, non-finite handling, logs and outputs (toy model, a few iterations)."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from unifuse.errors import ConfigError
from unifuse.training.checkpoint import list_checkpoints
from unifuse.training.config import from_dict
from unifuse.training.logging import read_csv
from unifuse.training.trainer import NonFiniteError, Trainer

from training_helpers import tiny_config_dict


class Interrupt(Exception):
    pass


def _cfg(data, **over):
    return from_dict(tiny_config_dict(data, threads=1, **over))


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_after_interruption_matches_uninterrupted_run(tiny_data, tmp_path):
    cfg = _cfg(tiny_data, iterations=6, checkpoint_every=3, diagnostics_every=2)
    Trainer(cfg, tmp_path / "full").fit()

    def stop_after_4(trainer, res):
        if res.step == 4:  # the work of step 4 is lost: resume must redo it from checkpoint 3
            raise Interrupt

    with pytest.raises(Interrupt):
        Trainer(cfg, tmp_path / "cut", callbacks=[stop_after_4]).fit()
    assert [s for s, _ in list_checkpoints(tmp_path / "cut" / "checkpoints")] == [3]
    assert len(read_csv(tmp_path / "cut" / "train_log.csv")) == 4

    resumed = Trainer(cfg, tmp_path / "cut", resume=True)
    assert resumed.step == 3
    resumed.fit()

    for f in ("model.safetensors", "model_ema.safetensors"):
        _assert_same_state(load_file(tmp_path / "full" / f), load_file(tmp_path / "cut" / f))
    # FAMO logits, logged losses and conflict diagnostics follow the same trajectory
    full_log, cut_log = read_csv(tmp_path / "full" / "train_log.csv"), read_csv(tmp_path / "cut" / "train_log.csv")
    assert [r["step"] for r in cut_log] == [str(i) for i in range(1, 7)]
    drop = {"time_s"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in full_log] == [{k: v for k, v in r.items() if k not in drop} for r in cut_log]
    assert read_csv(tmp_path / "full" / "conflicts.csv") == read_csv(tmp_path / "cut" / "conflicts.csv")
    # the live weights moved and the EMA lags behind them
    live, ema = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "full" / "model_ema.safetensors")
    assert not torch.equal(live["inp.weight"], ema["inp.weight"])


def test_existing_run_needs_resume_and_resume_can_extend(tiny_data, tmp_path, capsys):
    cfg = _cfg(tiny_data, iterations=2, checkpoint_every=1, keep_checkpoints=1)
    Trainer(cfg, tmp_path / "run").fit()
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "checkpoints")] == [2]
    with pytest.raises(ConfigError, match="--resume"):
        Trainer(cfg, tmp_path / "run")
    longer = _cfg(tiny_data, iterations=3, checkpoint_every=1, keep_checkpoints=2, optimizer={"lr": 0.5})
    trainer = Trainer(longer, tmp_path / "run", resume=True)
    assert trainer.cfg.iterations == 3 and trainer.cfg.optimizer.lr == 1e-3  # the recipe comes from the checkpoint
    assert trainer.cfg.keep_checkpoints == 2  # ... the run options from the invocation
    assert "ignoring changed key(s): optimizer.lr" in capsys.readouterr().err
    out = trainer.fit()
    assert out["step"] == 3
    assert [r["step"] for r in read_csv(tmp_path / "run" / "train_log.csv")] == ["1", "2", "3"]
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "checkpoints")] == [2, 3]


def test_resume_without_checkpoint_starts_fresh(tiny_data, tmp_path):
    t = Trainer(_cfg(tiny_data, iterations=1), tmp_path / "new", resume=True)
    assert t.step == 0
    t.fit()
    assert (tmp_path / "new" / "model_ema.safetensors").is_file()


def _poison(trainer: Trainer, at_step: int, task: str = "MFF", index: int = 1):
    """Make the batch of ``task`` at iteration ``at_step`` contain a NaN in sample ``index``."""
    inner = trainer.batches

    class Poisoned:
        def __next__(self):
            batch = next(inner)
            if trainer.step == at_step:
                batch[task]["A"][index, 0, 0, 0] = float("nan")
            return batch

        def __getattr__(self, name):
            return getattr(inner, name)

    trainer.batches = Poisoned()


def test_nonfinite_loss_is_reported_and_skipped(tiny_data, tmp_path):
    cfg = _cfg(tiny_data, iterations=4, checkpoint_every=10)
    seen = {}

    def snapshot(trainer, res):
        seen[res.step] = (
            {k: v.clone() for k, v in trainer.model.state_dict().items()},
            {k: v.clone() for k, v in trainer.ema.state_dict().items()},
            trainer.weighting.state_dict()["xi"].clone(),
            res,
        )

    tr = Trainer(cfg, tmp_path / "nan", callbacks=[snapshot])
    _poison(tr, at_step=3)
    tr.fit()
    model2, ema2, xi2, _ = seen[2]
    model3, ema3, xi3, res3 = seen[3]
    assert res3.skipped and math.isnan(res3.losses["MFF"])
    _assert_same_state(model2, model3)  # weights, EMA and FAMO logits untouched by the bad batch
    _assert_same_state(ema2, ema3)
    assert torch.equal(xi2, xi3)
    assert not seen[4][3].skipped and all(torch.isfinite(v).all() for v in seen[4][0].values())
    assert not any(torch.equal(model3[k], seen[4][0][k]) for k in ("inp.weight", "out.weight"))  # training went on
    names = read_csv(tmp_path / "nan" / "train_log.csv")[2]
    assert names["skipped"] == "1"
    events = (tmp_path / "nan" / "events.log").read_text()
    assert "[step 3] non-finite loss" in events and "non-finite values in p" in events  # the offending file is named
    batch_names = events.split("MFF: batch ")[1].split(";")[0].split(", ")
    assert len(batch_names) == cfg.batch_size and all(n.startswith("p") for n in batch_names)


def test_persistent_nonfinite_aborts(tiny_data, tmp_path):
    cfg = _cfg(tiny_data, iterations=5, max_nonfinite=2)
    tr = Trainer(cfg, tmp_path / "bad")
    inner = tr.batches

    class AllNaN:
        def __next__(self):
            b = next(inner)
            b["IVF"]["B"][:] = float("inf")
            return b

        def __getattr__(self, name):
            return getattr(inner, name)

    tr.batches = AllNaN()
    with pytest.raises(NonFiniteError, match="2 consecutive"):
        tr.fit()


def test_mean_weighting_logs_uniform_weights_and_no_post_losses(tiny_data, tmp_path):
    cfg = _cfg(tiny_data, iterations=2, weighting="mean")
    Trainer(cfg, tmp_path / "mean").fit()
    rows = read_csv(tmp_path / "mean" / "train_log.csv")
    assert "post_IVF" not in rows[0]
    assert all(abs(float(r[f"weight_{t}"]) - 1 / 3) < 1e-7 for r in rows for t in ("IVF", "MFF", "MEF"))


def test_famo_first_logit_step_matches_hand_computation(tiny_data, tmp_path):
    """After one iteration the logged FAMO weights equal softmax(ξ₁) computed by hand from the
    logged pre-/post-step losses: δ = log ℓ − log ℓ', g = z(δ − ⟨z,δ⟩) at z = 1/3, and Adam's
    first step from ξ = 0 is ξ₁ = −lr·g/(|g| + eps) (spec §8.3 step 7, lr 0.025)."""
    cfg = _cfg(tiny_data, iterations=1)
    Trainer(cfg, tmp_path / "famo").fit()
    r = read_csv(tmp_path / "famo" / "train_log.csv")[0]
    tasks = ("IVF", "MFF", "MEF")
    pre = torch.tensor([float(r[f"loss_{t}"]) for t in tasks], dtype=torch.float64)
    post = torch.tensor([float(r[f"post_{t}"]) for t in tasks], dtype=torch.float64)
    delta = torch.log(pre + 1e-8) - torch.log(post + 1e-8)
    z = torch.full((3,), 1 / 3, dtype=torch.float64)
    g = z * (delta - (z * delta).sum())
    expected = torch.softmax(-0.025 * g / (g.abs() + 1e-8), 0)
    logged = torch.tensor([float(r[f"weight_{t}"]) for t in tasks], dtype=torch.float64)
    assert torch.allclose(logged, expected, atol=1e-6), (logged, expected)
    assert logged.max() - logged.min() > 0.01  # the weights did move


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run_logs_the_cpu_runs_losses(tiny_data, tmp_path):
    """The deterministic toy recipe on CUDA and on the CPU: same initialisation (built on the
    CPU, then moved) and batches, so the same logged losses up to float rounding."""
    recipe = dict(iterations=2, model={"name": "toy_fuser", "dropout": 0.0})
    Trainer(_cfg(tiny_data, **recipe), tmp_path / "cpu").fit()
    Trainer(_cfg(tiny_data, device="cuda", **recipe), tmp_path / "gpu").fit()
    cpu, gpu = read_csv(tmp_path / "cpu" / "train_log.csv"), read_csv(tmp_path / "gpu" / "train_log.csv")
    assert len(cpu) == len(gpu) == 2
    for r, s in zip(cpu, gpu):
        for t in ("IVF", "MFF", "MEF"):
            want, got = float(r[f"loss_{t}"]), float(s[f"loss_{t}"])
            assert math.isfinite(got) and abs(got - want) <= 1e-4 * abs(want) + 1e-6, (t, got, want)
    assert load_file(tmp_path / "gpu" / "model.safetensors")  # weights saved for a CPU load
