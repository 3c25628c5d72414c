"""Degraded training data: the ``degrade:`` dataset key, collate, and exact resume (batcher and trainer)."""

from __future__ import annotations

import pytest
import torch

from unifuse.data.datasets import build_dataset, build_task_datasets
from unifuse.data.degrade.dataset import DegradedDataset
from unifuse.data.multitask import MultiTaskBatches, collate
from unifuse.errors import ConfigError

from training_helpers import tiny_config_dict, write_pairs


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return write_pairs(tmp_path_factory.mktemp("degpairs"), n=6, size=24)


def _folder(pairs, task="IVF", **deg):
    sub = {"IVF": ("vi", "ir"), "MFF": ("a", "b"), "MEF": ("over", "under")}[task]
    cfg = {"type": "folder", "root": str(pairs / task), "sub_a": sub[0], "sub_b": sub[1], "task": task, "crop": 16}
    if deg:
        cfg["degrade"] = deg
    return build_dataset(cfg)


def test_degrade_key_wraps_and_sample_carries_clean_pair_and_prompt(pairs):
    base = _folder(pairs)
    ds = _folder(pairs, seed=3, p=1.0, n=[1, 3])
    assert isinstance(ds, DegradedDataset) and ds.task == "IVF" and len(ds) == len(base)
    for i in range(len(ds)):
        s, b = ds.get(i, 77), base.get(i, 77)
        assert set(s) >= {"A", "B", "A_clean", "B_clean", "prompt", "degradations", "name", "task"}
        assert torch.equal(s["A_clean"], b["A"]) and torch.equal(s["B_clean"], b["B"])  # same crop as the base
        assert s["A"].shape == b["A"].shape and s["prompt"] and 1 <= len(s["degradations"]) <= 3
        assert not (torch.equal(s["A"], b["A"]) and torch.equal(s["B"], b["B"]))
        again = ds.get(i, 77)
        assert torch.equal(again["A"], s["A"]) and torch.equal(again["B"], s["B"]) and again["prompt"] == s["prompt"]
    # the sample seed and the dataset's degrade seed both change the draw
    assert any(ds.get(i, 77)["prompt"] != ds.get(i, 78)["prompt"] for i in range(len(ds)))
    other = _folder(pairs, seed=4)
    assert any(not torch.equal(ds.get(i, 77)["A"], other.get(i, 77)["A"]) for i in range(len(ds)))


def test_probability_p_and_prompt_dropout(pairs):
    never = _folder(pairs, p=0.0)
    s = never.get(0, 1)
    assert s["prompt"] == "" and s["degradations"] == () and torch.equal(s["A"], s["A_clean"])
    half = _folder(pairs, p=0.5, seed=1)
    flags = [bool(half.get(i % 6, k)["degradations"]) for k in range(20) for i in range(6)]
    assert 0.3 < sum(flags) / len(flags) < 0.7
    drop = _folder(pairs, p=1.0, prompt_dropout=1.0)
    from unifuse.data.degrade import generic_prompts
    assert all(drop.get(i, 5)["prompt"] in generic_prompts() + [""] for i in range(6))


def test_synthetic_gt_is_never_degraded_and_errors():
    base = build_dataset({"type": "synthetic", "task": "MFF", "crop": 32, "length": 4})
    ds = build_dataset({"type": "synthetic", "task": "MFF", "crop": 32, "length": 4, "degrade": {"seed": 1}})
    for i in range(4):
        assert torch.equal(ds.get(i, 9)["GT"], base.get(i, 9)["GT"])
    with pytest.raises(ConfigError, match="does not match"):
        build_dataset({"type": "synthetic", "task": "MFF", "crop": 32, "degrade": {"task": "ivf"}})
    with pytest.raises(ConfigError, match="unknown key"):
        build_dataset({"type": "synthetic", "task": "MFF", "crop": 32, "degrade": {"prob": 1}})
    with pytest.raises(ConfigError, match="not in the MFF pool"):
        build_dataset({"type": "synthetic", "task": "MFF", "crop": 32, "degrade": {"types": ["ir_strips"]}})


def test_collate_carries_prompts_and_fills_clean_for_undegraded_datasets(pairs):
    ds, plain = _folder(pairs, seed=2), _folder(pairs)
    samples = [ds.get(0, 1), plain.get(1, 1), ds.get(2, 1)]
    batch = collate(samples, "IVF")
    assert batch["A"].shape == batch["A_clean"].shape == (3, 1, 16, 16)
    assert torch.equal(batch["A_clean"][1], batch["A"][1])
    assert batch["prompts"] == [samples[0]["prompt"], "", samples[2]["prompt"]] == batch["prompt"]
    assert batch["degradations"][1] == () and batch["degradations"][0] == samples[0]["degradations"]
    assert "prompts" not in collate([plain.get(0, 1)], "IVF")


def _snap(batch):
    return {t: (b["A"].clone(), b["B"].clone(), b["A_clean"].clone(), list(b["prompts"]), list(b["degradations"])) for t, b in batch.items()}


def _same(x, y):
    assert x.keys() == y.keys()
    for t in x:
        for u, v in zip(x[t], y[t]):
            assert torch.equal(u, v) if isinstance(u, torch.Tensor) else u == v


def test_batcher_resume_sees_the_same_degraded_batches(pairs):
    cfg = {t: [{"type": "folder", "root": str(pairs / t), "sub_a": s[0], "sub_b": s[1], "crop": 16, "task": t,
                "degrade": {"n": [1, 3], "p": 0.8, "seed": 11}}]
           for t, s in {"IVF": ("vi", "ir"), "MEF": ("over", "under")}.items()}
    full = MultiTaskBatches(build_task_datasets(cfg), batch_size=4, seed=3)
    seen = [_snap(next(full)) for _ in range(5)]
    cut = MultiTaskBatches(build_task_datasets(cfg), batch_size=4, seed=3)
    for _ in range(2):
        next(cut)
    state = cut.state_dict()
    resumed = MultiTaskBatches(build_task_datasets(cfg), batch_size=4, seed=3)
    resumed.load_state_dict(state)
    for k in range(2, 5):
        _same(_snap(next(resumed)), seen[k])
    assert any(p for b in seen for p in b["IVF"][3])  # prompts present


def test_trainer_resume_sees_the_same_degraded_batches(tmp_path):
    from unifuse.training.config import from_dict
    from unifuse.training.trainer import Trainer

    data = write_pairs(tmp_path / "data", n=4, size=20)
    raw = tiny_config_dict(data, threads=1, iterations=4, checkpoint_every=2, batch_size=2, weighting="mean")
    for t in raw["tasks"]:
        t["datasets"][0]["degrade"] = {"n": [1, 2], "p": 0.8, "seed": 5}
    cfg = from_dict(raw)

    def recorder(trainer, log):
        inner = trainer.batches

        class Rec:
            def __next__(self):
                b = next(inner)
                log.append(_snap(b))
                return b

            def __getattr__(self, name):
                return getattr(inner, name)

        trainer.batches = Rec()

    full_log, cut_log = [], []
    tr = Trainer(cfg, tmp_path / "full")
    recorder(tr, full_log)
    tr.fit()

    class Stop(Exception):
        pass

    def stop_at_3(trainer, res):
        if res.step == 3:
            raise Stop

    tr = Trainer(cfg, tmp_path / "cut", callbacks=[stop_at_3])
    with pytest.raises(Stop):
        tr.fit()
    tr = Trainer(cfg, tmp_path / "cut", resume=True)
    assert tr.step == 2
    recorder(tr, cut_log)
    tr.fit()
    assert len(full_log) == 4 and len(cut_log) == 2  # the resumed run loads the batches of steps 3 and 4
    for got, want in zip(cut_log, full_log[2:]):
        _same(got, want)
    assert any(p for b in full_log for t in b for p in b[t][3])
