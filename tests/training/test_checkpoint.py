"""Checkpoint encoding (safetensors + JSON) and atomic publication."""

from __future__ import annotations

import json
import random

import numpy as np
import torch

from unifuse.training.checkpoint import (
    flatten_state, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint, unflatten_state,
)


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_flatten_roundtrip_keeps_types_exactly():
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.8, 0.9))
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {
        "optimizer": opt.state_dict(),  # int keys, tuples, 0-dim step tensors
        "python_rng": random.getstate(),  # nested tuples with 625 ints
        "numpy_rng": np.random.get_state(),  # tuple with a uint32 array
        "torch_rng": torch.get_rng_state(),  # uint8 tensor
        "misc": {"a.b": torch.ones(2), "a": {"b": torch.zeros(2)}, "__odd": 1, "none": None, "flag": True, "big": 2**100},
    }
    tensors, skel = flatten_state(state)
    json.dumps(skel)  # the skeleton is plain JSON
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())
    back = unflatten_state(json.loads(json.dumps(skel)), tensors)
    assert _equal(state, back)
    random.setstate(back["python_rng"])
    np.random.set_state(back["numpy_rng"])
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    opt2.load_state_dict(back["optimizer"])
    assert opt2.param_groups[0]["betas"] == (0.8, 0.9)


def test_save_load_latest_and_pruning(tmp_path):
    root = tmp_path / "checkpoints"
    model = {"w": torch.arange(6.0).view(2, 3)}
    for step in (10, 20, 30):
        save_checkpoint(root, step, model, {"w": model["w"] * step}, {"step_info": step, "t": torch.tensor([step])}, keep=2)
    assert [s for s, _ in list_checkpoints(root)] == [20, 30]
    assert json.loads((root / "latest.json").read_text())["step"] == 30
    ck = load_checkpoint(latest_checkpoint(root))
    assert ck["step"] == 30 and torch.equal(ck["model"]["w"], model["w"]) and torch.equal(ck["ema"]["w"], model["w"] * 30)
    assert ck["state"]["step_info"] == 30 and torch.equal(ck["state"]["t"], torch.tensor([30]))
    # writing the same step again (after a resume) replaces it
    save_checkpoint(root, 30, {"w": model["w"] + 1}, None, {}, keep=2)
    assert torch.equal(load_checkpoint(root / "step_00000030")["model"]["w"], model["w"] + 1)


def test_half_written_checkpoints_are_ignored(tmp_path):
    """A run killed while writing leaves a hidden temp folder / a stale pointer: both ignored."""
    root = tmp_path / "checkpoints"
    save_checkpoint(root, 5, {"w": torch.zeros(1)}, None, {})
    (root / ".step_00000010.abc").mkdir()  # killed during the write of step 10
    (root / ".step_00000010.abc" / "model.safetensors").write_bytes(b"partial")
    (root / "step_00000007").mkdir()  # an incomplete folder without state.json
    assert latest_checkpoint(root) == root / "step_00000005"
    (root / "latest.json").write_text('{"step": 9, "dir": "step_00000009"}')  # pointer to a missing folder
    assert latest_checkpoint(root) == root / "step_00000005"
    assert latest_checkpoint(tmp_path / "nothing") is None
