"""MultiTaskBatches: mixed_equal semantics, determinism, exact resume, rank slicing (spec §8.1)."""

import pytest
import torch

from unifuse.data.multitask import MultiTaskBatches, collate
from unifuse.errors import ConfigError, InputMismatchError


class Toy:
    """Pure ``get(index, seed)``: A holds the index, B a value derived from the seed."""

    def __init__(self, n, offset=0, size=4):
        self.n, self.offset, self.size = n, offset, size

    def __len__(self):
        return self.n

    def get(self, index, seed=0):
        a = torch.full((1, self.size, self.size), float(index + self.offset))
        b = torch.full((1, self.size, self.size), float(seed % 1000003))
        return {"A": a, "B": b, "name": f"s{index + self.offset}", "task": "T"}


def _ids(batch):
    return batch["A"][:, 0, 0, 0].long().tolist()


def _make(**kw):
    ds = {"IVF": Toy(10), "MFF": [Toy(5), Toy(6, offset=100)], "MEF": Toy(7)}
    return MultiTaskBatches(ds, **{"batch_size": 4, "seed": 17, **kw})


def test_one_batch_per_task_in_order_and_shapes():
    m = _make()
    b = next(m)
    assert list(b) == ["IVF", "MFF", "MEF"] == m.tasks
    for t in b.values():
        assert t["A"].shape == t["B"].shape == (4, 1, 4, 4)
        assert len(t["names"]) == 4
    assert m.batches_per_epoch == {"IVF": 2, "MFF": 2, "MEF": 1}
    assert m.epoch_length == 2


def test_epochs_drop_last_and_independent_reshuffle():
    m = _make()
    batches = [next(m) for _ in range(6)]
    # IVF: 10 samples, 2 batches per epoch: each epoch = 8 distinct indices, 2 dropped
    for e in range(3):
        ids = _ids(batches[2 * e]["IVF"]) + _ids(batches[2 * e + 1]["IVF"])
        assert len(set(ids)) == 8 and set(ids) <= set(range(10))
    # MEF: 7 samples, 1 batch per epoch, reshuffled every iteration
    mef = [tuple(_ids(b["MEF"])) for b in batches]
    assert all(len(set(x)) == 4 for x in mef) and len(set(mef)) > 1
    # MFF: two datasets concatenated, both reached
    mff = {i for b in batches for i in _ids(b["MFF"])}
    assert mff & set(range(5)) and mff & set(range(100, 106)) and mff <= set(range(5)) | set(range(100, 106))
    st = m.state_dict()["tasks"]
    assert (st["IVF"]["epoch"], st["IVF"]["batch"]) == (3, 0)
    assert (st["MEF"]["epoch"], st["MEF"]["batch"]) == (6, 0)


def test_deterministic_in_seed():
    a, b, c = _make(), _make(), _make(seed=18)
    for _ in range(4):
        x, y, z = next(a), next(b), next(c)
        for t in x:
            assert torch.equal(x[t]["A"], y[t]["A"]) and torch.equal(x[t]["B"], y[t]["B"]) and x[t]["names"] == y[t]["names"]
    assert any(not torch.equal(x[t]["A"], z[t]["A"]) for t in x)
    # crop seeds differ per sample
    assert len(set(x["IVF"]["B"][:, 0, 0, 0].tolist())) == 4


def test_resume_is_exact_even_with_other_world_size():
    ref = _make()
    for _ in range(5):
        next(ref)
    state = ref.state_dict()
    expected = [next(ref) for _ in range(4)]
    r = _make()
    r.load_state_dict(state)
    assert r.iteration == 5
    got = [next(r) for _ in range(4)]
    for e, g in zip(expected, got):
        for t in e:
            assert torch.equal(e[t]["A"], g[t]["A"]) and torch.equal(e[t]["B"], g[t]["B"])
    # the two ranks of a 2-process run resumed from the same state rebuild the same batches
    r0, r1 = _make(rank=0, world_size=2), _make(rank=1, world_size=2)
    r0.load_state_dict(state)
    r1.load_state_dict(state)
    x0, x1 = next(r0), next(r1)
    for t in expected[0]:
        assert torch.equal(torch.cat([x0[t]["A"], x1[t]["A"]]), expected[0][t]["A"])
    with pytest.raises(ConfigError, match="seed"):
        _make(seed=1).load_state_dict(state)
    with pytest.raises(ConfigError, match="samples"):
        MultiTaskBatches({"IVF": Toy(11), "MFF": [Toy(5), Toy(6)], "MEF": Toy(7)}, 4, 17).load_state_dict(state)


@pytest.mark.parametrize("world_size", [2, 4])
def test_rank_slices_concatenate_to_single_process_batch(world_size):
    single = _make()
    ranks = [_make(rank=r, world_size=world_size) for r in range(world_size)]
    for _ in range(3):
        full = next(single)
        parts = [next(r) for r in ranks]
        for t in full:
            assert all(p[t]["A"].shape[0] == 4 // world_size for p in parts)
            assert torch.equal(torch.cat([p[t]["A"] for p in parts]), full[t]["A"])
            assert torch.equal(torch.cat([p[t]["B"] for p in parts]), full[t]["B"])
            assert sum((p[t]["names"] for p in parts), []) == full[t]["names"]


def test_thread_pool_gives_same_batches():
    a, b = _make(), _make(num_workers=2)
    for _ in range(3):
        x, y = next(a), next(b)
        for t in x:
            assert torch.equal(x[t]["A"], y[t]["A"]) and torch.equal(x[t]["B"], y[t]["B"])
    b.close()


def test_extra_entries_batched_only_when_common():
    class WithGT(Toy):
        def get(self, index, seed=0):
            return {**super().get(index, seed), "GT": torch.zeros(1, self.size, self.size)}

    assert collate([WithGT(2).get(0), WithGT(2).get(1)])["GT"].shape == (2, 1, 4, 4)
    mixed = collate([Toy(2).get(0), WithGT(2).get(1)])
    assert "GT" not in mixed and mixed["A"].shape == (2, 1, 4, 4)


def test_config_errors():
    with pytest.raises(ConfigError, match="divisible"):
        _make(batch_size=6, world_size=4)
    with pytest.raises(ConfigError, match="fewer than the batch size"):
        MultiTaskBatches({"IVF": Toy(3)}, 4, 0)
    with pytest.raises(ConfigError, match="rank"):
        _make(rank=2, world_size=2)
    with pytest.raises(ConfigError):
        MultiTaskBatches({}, 4, 0)
    with pytest.raises(InputMismatchError, match="different sizes"):
        collate([Toy(2).get(0), Toy(2, size=5).get(1)], "IVF")


def test_with_real_folders(data_dir):
    from unifuse.data import build_dataset

    ds = {
        "IVF": build_dataset({"type": "tno", "root": str(data_dir / "ivf" / "tno"), "crop": 32}),
        "MEF": build_dataset({"type": "mefb_train", "root": str(data_dir / "mef" / "mefb_train"), "crop": 32}),
    }
    m = MultiTaskBatches(ds, batch_size=2, seed=17)
    b = next(m)
    assert b["IVF"]["A"].shape == (2, 1, 32, 32) and b["MEF"]["B"].shape == (2, 1, 32, 32)
    assert all(0 <= t["A"].min() and t["A"].max() <= 1 for t in b.values())
