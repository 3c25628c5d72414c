"""``unifuse.models.weights_io``: the reading, checks and writing every model's checkpoint module shares."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pytest
import torch
from torch import nn

from unifuse.errors import WeightsError
from unifuse.models.weights_io import (check_config, check_fit, describe_keys, load_known, read_weights, save_weights,
                                       unwrap_state_dict)


@dataclass
class _Cfg:
    width: int = 3

    def to_dict(self):
        return asdict(self)


class _Net(nn.Module):
    def __init__(self, width=3):
        super().__init__()
        self.config = _Cfg(width)
        self.lin = nn.Linear(width, 2)


def test_unwrap_takes_the_first_fitting_wrapper():
    a, b = {"x": torch.zeros(1)}, {"y": torch.ones(1)}
    assert unwrap_state_dict({"model": a, "params_ema": b}, "f", ("model", "params_ema")) is a
    assert unwrap_state_dict({"model": a, "params_ema": b}, "f", ("params_ema", "model")) is b
    assert unwrap_state_dict(a, "f") is a
    with pytest.raises(WeightsError, match=r"f: not a state dict .*under 'a'/'b'"):
        unwrap_state_dict({"model": {"x": 1}}, "f", ("a", "b"))


def test_save_then_read_round_trip_with_config(tmp_path):
    net = _Net()
    path = save_weights(net, tmp_path / "w.safetensors", "unifuse-test-1", {"note": "hi"})
    sd, cfg, source = read_weights(path)
    assert cfg == {"width": 3} and source == str(path)
    torch.testing.assert_close(sd["lin.weight"], net.lin.weight.detach())
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "unifuse-test-1" and meta["note"] == "hi" and json.loads(meta["config"]) == {"width": 3}
    assert not (tmp_path / "w.safetensors.tmp").exists()


def test_read_refuses_pickled_code_and_missing_files(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"model": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="evil.pth: cannot read weights"):
        read_weights(tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="weights file not found"):
        read_weights(tmp_path / "nope.pth")


def test_checks_name_what_does_not_fit():
    net = _Net()
    own = net.state_dict()
    check_config({"width": 3, "extra": 1}, net.config.to_dict(), "f")  # keys only in the file do not matter
    with pytest.raises(WeightsError, match=r"f: weights were saved with a different config: width=4 \(model has 3\); hint"):
        check_config({"width": 4}, net.config.to_dict(), "f", hint="; hint")
    check_config({"width": 4}, net.config.to_dict(), "f", ignore={"width"})
    keys = [f"k{i}" for i in range(8)]
    assert describe_keys(keys, 3) == "k0, k1, k2 (+5 more)"
    with pytest.raises(WeightsError, match=r"f: TC weights do not fit this model \(missing keys: a; unexpected keys: b\)!"):
        check_fit({}, own, "f", ["a"], ["b"], what="TC weights", suffix="!")
    bad = {"lin.weight": torch.zeros(2, 4), "lin.bias": torch.zeros(2)}
    with pytest.raises(WeightsError, match=r"shape mismatch for 1 tensor\(s\): lin.weight \(2, 4\) vs \(2, 3\)"):
        check_fit(bad, own, "f", (), ())


def test_load_known_casts_to_the_model_dtype_and_skips_unknown():
    net = _Net().double()
    sd = {"lin.weight": torch.ones(2, 3, dtype=torch.float32), "other": torch.zeros(1)}
    load_known(net, sd, net.state_dict())
    assert net.lin.weight.dtype == torch.float64 and bool((net.lin.weight == 1).all())
