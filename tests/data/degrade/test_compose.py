"""Composition rules (spec mmaif.md §1.4–§1.6): pools, n, exclusions, order, per-source rules, records."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from unifuse.data.degrade import (EXCLUSIVE, ORDER, TYPES, WEATHER, DegradeSpec, PseudoDepth, check_types, degrade_pair,
                                  draw_types, list_types, parse_n, task_pool)
from unifuse.data.degrade.operators import op_gaussian_blur
from unifuse.errors import ConfigError, InputMismatchError


def _pair(h=24, w=32, seed=0, cb=1):
    g = torch.Generator().manual_seed(seed)
    a = torch.nn.functional.interpolate(torch.rand(1, 3, h // 4, w // 4, generator=g), size=(h, w), mode="bilinear")[0]
    b = torch.nn.functional.interpolate(torch.rand(1, cb, h // 4, w // 4, generator=g), size=(h, w), mode="bilinear")[0]
    return 0.1 + 0.8 * a, 0.1 + 0.8 * b


def test_pools_per_task():
    common = {"gaussian_blur", "motion_blur", "downsample", "noise", "jpeg", "haze", "rain", "snow"}
    assert set(task_pool("ivf")) == common | {"low_exposure", "low_contrast", "ir_strips"}
    assert set(task_pool("MEF")) == common | {"low_contrast"}
    assert set(task_pool("mff")) == common | {"low_exposure", "high_exposure"}
    assert list_types() == list(ORDER) and len(ORDER) == 12
    assert task_pool("vif") == task_pool("ivf")
    with pytest.raises(ConfigError, match="ivf, mef, mff"):
        task_pool("pan")


def test_draw_types_n_distribution_exclusions_and_uniformity():
    rng = np.random.default_rng(0)
    ns, counts = Counter(), {t: Counter() for t in ("IVF", "MEF", "MFF")}
    N = 3000
    for task in counts:
        for _ in range(N):
            ts = draw_types(task, rng)
            assert ts == [t for t in ORDER if t in ts] and len(set(ts)) == len(ts)
            assert set(ts) <= set(task_pool(task))
            for ex in EXCLUSIVE:
                assert len(ex & set(ts)) <= 1
            ns[len(ts)] += 1
            counts[task].update(ts)
    assert set(ns) == {1, 2, 3}
    freq = np.array([ns[1], ns[2], ns[3]]) / (3 * N)
    assert np.allclose(freq, [0.5, 0.3, 0.2], atol=0.03)
    for task, c in counts.items():  # roughly uniform over the pool (the exclusions lower their members a little)
        share = np.array([c[t] for t in task_pool(task)], float)
        assert share.min() > 0.6 * share.mean() and share.max() < 1.4 * share.mean(), (task, c)
    assert all(len(draw_types("ivf", rng, n=2)) == 2 for _ in range(50))
    assert {len(draw_types("mef", rng, n=(2, 3))) for _ in range(100)} == {2, 3}


def test_parse_n_and_check_types_errors():
    assert parse_n(2) == (2, 2) and parse_n("1-3") == (1, 3) and parse_n([1, 2]) == (1, 2)
    for bad in (0, 4, "3-1", "x", (1, 5)):
        with pytest.raises(ConfigError, match="within 1-3"):
            parse_n(bad)
    with pytest.raises(ConfigError, match="valid types: haze, rain"):
        check_types("ivf", ["fog"])
    with pytest.raises(ConfigError, match="not in the IVF pool"):
        check_types("ivf", ["high_exposure"])
    with pytest.raises(ConfigError, match="exclude each other"):
        check_types("mff", ["low_exposure", "high_exposure"])
    with pytest.raises(ConfigError, match="exclude each other"):
        check_types("ivf", ["gaussian_blur", "motion_blur"])
    assert check_types("ivf", ["jpeg", "haze", "noise"]) == ["haze", "noise", "jpeg"]


def test_parameter_draws_within_ranges_and_roughly_uniform():
    rng = np.random.default_rng(1)
    N = 1500
    for name, typ in TYPES.items():
        draws = [typ.draw(rng, 64, 96, False) for _ in range(N)]
        for key, (lo, hi) in typ.bounds.items():
            v = np.array([d[key] for d in draws], float)
            v = v[v > 0] if key == "noise_sigma" else v  # p = 0.5 of "no extra noise"
            assert v.min() >= lo - 1e-12 and v.max() <= hi + 1e-12, (name, key)
            # uniform: mean at the centre, a quarter of the draws in each quarter of the range
            assert abs(v.mean() - (lo + hi) / 2) < 0.05 * (hi - lo), (name, key, v.mean())
            q = np.histogram(v, bins=4, range=(lo, hi))[0] / v.size
            if typ.name not in ("downsample",):  # U{2,3,4} has 3 values, checked below
                assert np.all(np.abs(q - 0.25) < 0.06), (name, key, q)
    ds = Counter(TYPES["downsample"].draw(rng, 8, 8)["scale"] for _ in range(N))
    assert set(ds) == {2, 3, 4} and min(ds.values()) > 0.28 * N
    nz = [TYPES["noise"].draw(rng, 8, 8)["per_channel"] for _ in range(N)]
    assert abs(np.mean(nz) - 0.6) < 0.05
    assert not any(TYPES["noise"].draw(rng, 8, 8, True)["per_channel"] for _ in range(100))  # IR: one field
    strips = [TYPES["ir_strips"].draw(rng, 40, 50, True) for _ in range(N)]
    assert abs(np.mean([s["vertical"] for s in strips]) - 0.7) < 0.05
    k = Counter(len(s["bands"]) for s in strips)
    assert set(k) == set(range(1, 7))
    widths = [b["width"] for s in strips for b in s["bands"]]
    assert min(widths) == 2 and max(widths) == 24
    assert all(0 <= b["pos"] and b["pos"] + b["width"] <= (50 if s["vertical"] else 40) for s in strips for b in s["bands"])
    rain = [TYPES["rain"].draw(rng, 8, 8) for _ in range(N)]
    lens = [lay["length"] for r in rain for lay in r["layers"]]
    assert min(lens) == 15 and max(lens) == 40
    assert abs(np.mean([len(r["layers"]) == 2 for r in rain]) - 0.5) < 0.05
    snow = [TYPES["snow"].draw(rng, 8, 8) for _ in range(N)]
    assert Counter(len(s["layers"]) for s in snow).keys() == {2, 3}
    mb = [TYPES["motion_blur"].draw(rng, 8, 8)["length"] for _ in range(N)]
    assert min(mb) == 7 and max(mb) == 25
    q = [TYPES["jpeg"].draw(rng, 8, 8)["quality"] for _ in range(N)]
    assert min(q) == 15 and max(q) == 70


def test_determinism_same_seed_identical_different_seeds_differ():
    a, b = _pair()
    for task in ("ivf", "mef", "mff"):
        r1, r2 = degrade_pair(a, b, task, seed=42), degrade_pair(a.clone(), b.clone(), task, seed=42)
        assert torch.equal(r1.a, r2.a) and torch.equal(r1.b, r2.b)
        assert r1.types == r2.types and r1.params == r2.params and r1.prompt == r2.prompt
        others = [degrade_pair(a, b, task, seed=s) for s in range(43, 48)]
        assert any(not torch.equal(o.a, r1.a) for o in others)
    r = degrade_pair(a, b, "ivf", seed=7, types=["noise"])
    assert not torch.equal(r.a, degrade_pair(a, b, "ivf", seed=8, types=["noise"]).a)
    a0, b0 = a.clone(), b.clone()
    degrade_pair(a, b, "ivf", seed=3, types=["haze", "noise", "jpeg"])
    assert torch.equal(a, a0) and torch.equal(b, b0)  # inputs untouched


def test_result_shapes_dtype_range_and_json_record():
    a, b = _pair(cb=1)
    for seed in range(10):
        r = degrade_pair(a, b, "ivf", seed=seed)
        assert r.a.shape == a.shape and r.b.shape == b.shape and r.a.dtype == torch.float32
        assert 0 <= float(r.a.min()) and float(r.a.max()) <= 1 and 0 <= float(r.b.min()) and float(r.b.max()) <= 1
        assert json.loads(json.dumps(r.params)) == r.params
        assert 1 <= len(r.types) <= 3 and r.seed == seed
        assert [rec["type"] for rec in r.records()] == list(r.types)


@pytest.mark.parametrize("name", [t for t in ORDER if t in task_pool("ivf")])
def test_ivf_which_source_each_type_hits(name):
    a, b = _pair()
    hits_b = 0
    for seed in range(12):
        r = degrade_pair(a, b, "ivf", seed=seed, types=[name])
        pa, pb = r.params[name]["a"], r.params[name]["b"]
        assert torch.equal(r.a, a) == (pa is None), (name, seed)
        assert torch.equal(r.b, b) == (pb is None), (name, seed)
        if name in WEATHER:
            assert pa is not None and set(pb) == {"ir_blur"} and 0.5 <= pb["ir_blur"]["sigma"] <= 1.5
            assert torch.allclose(r.b, op_gaussian_blur(b, pb["ir_blur"]))  # IR only blurred, no weather
        elif name == "low_exposure":
            assert pb is None
        elif name == "ir_strips":
            assert pa is None and pb is not None
        elif name == "low_contrast":
            assert (pa is None) != (pb is None)
        else:
            assert pa is not None
            if pb is not None and name != "downsample":  # (3 possible scales may coincide)
                assert pb != pa  # own parameters
        hits_b += pb is not None
    if name in ("gaussian_blur", "motion_blur", "downsample", "noise", "jpeg", "low_contrast"):
        assert 0 < hits_b < 12  # p = 0.5 / 50:50


def test_ivf_weather_blurs_ir_once():
    a, b = _pair()
    r = degrade_pair(a, b, "ivf", seed=0, types=["haze", "rain", "snow"])
    assert [r.params[t]["b"] is not None for t in ("haze", "rain", "snow")] == [True, False, False]


@pytest.mark.parametrize("task", ["mef", "mff"])
def test_mef_mff_share_parameters_and_weather_layers(task):
    a, _ = _pair()
    for name in task_pool(task):
        r = degrade_pair(a, a.clone(), task, seed=11, types=[name])
        pa, pb = r.params[name]["a"], r.params[name]["b"]
        if name in ("noise", "low_exposure"):
            assert {k: v for k, v in pa.items() if k != "seed"} == {k: v for k, v in pb.items() if k != "seed"}
            assert pa["seed"] != pb["seed"]
            if name == "noise" or pa["noise_sigma"] > 0:
                assert not torch.equal(r.a, r.b)  # independent noise realisations
        else:
            assert pa == pb
            assert torch.equal(r.a, r.b), name  # same input -> identical output: shared layers / depth


def _replay(a, b, task, r):
    """Apply the recorded parameters in physical order by hand; must reproduce the result."""
    xa, xb = a.clone(), b.clone()
    for t in ORDER:
        if t not in r.types:
            continue
        ctx = {}
        if t == "haze":
            y = 0.299 * xa[0] + 0.587 * xa[1] + 0.114 * xa[2]
            ctx["depth"] = PseudoDepth()(xa) if task == "ivf" else PseudoDepth()((0.5 * y + 0.5 * xb[0])[None])
        pa, pb = r.params[t]["a"], r.params[t]["b"]
        if pa is not None:
            xa = TYPES[t].apply(xa, pa, ctx)
        if pb is not None:
            xb = op_gaussian_blur(xb, pb["ir_blur"]) if "ir_blur" in pb else TYPES[t].apply(xb, pb, ctx)
    return xa, xb


@pytest.mark.parametrize("task", ["ivf", "mff"])
def test_record_replays_in_physical_order(task):
    a, b = _pair(16, 16, cb=1)
    replayed = 0
    for seed in range(15):
        r = degrade_pair(a, b, task, seed=seed, n=3)
        assert list(r.types) == [t for t in ORDER if t in r.types]
        xa, xb = _replay(a, b, task, r)
        assert torch.allclose(xa, r.a, atol=1e-6) and torch.allclose(xb, r.b, atol=1e-6), (seed, r.types)
        replayed += 1
    assert replayed == 15
    r = degrade_pair(a, b, task, seed=99, types=["haze", "rain", "noise"])  # haze depth + weather layer paths
    xa, xb = _replay(a, b, task, r)
    assert torch.allclose(xa, r.a, atol=1e-6) and torch.allclose(xb, r.b, atol=1e-6)
    # order matters: noise then JPEG differs from JPEG then noise
    from unifuse.data.degrade.operators import op_jpeg, op_noise
    r = degrade_pair(a, b, "ivf", seed=5, types=["jpeg", "noise"])
    pn, pj = r.params["noise"]["a"], r.params["jpeg"]["a"]
    assert torch.allclose(r.a, op_jpeg(op_noise(a, pn), pj))
    assert not torch.allclose(r.a, op_noise(op_jpeg(a, pj), pn))


def test_user_depth_map_is_used_for_haze():
    a, b = _pair()
    d = torch.zeros(24, 32)
    d[:, 16:] = 1.0
    r = degrade_pair(a, b, "ivf", seed=2, types=["haze"], depth=d)
    p = r.params["haze"]["a"]
    assert p["depth"] == "file"
    assert torch.allclose(r.a[:, :, :16], a[:, :, :16], atol=1e-6)  # depth 0 -> t = 1
    t = np.exp(-p["beta"])
    A = torch.tensor(p["airlight"]).view(3, 1, 1)
    assert torch.allclose(r.a[:, :, 16:], a[:, :, 16:] * t + A * (1 - t), atol=1e-5)
    with pytest.raises(InputMismatchError, match="must be"):
        degrade_pair(a, b, "ivf", seed=2, types=["haze"], depth=torch.zeros(2, 3, 4))


def test_bad_inputs_raise_clear_errors():
    a, b = _pair()
    with pytest.raises(InputMismatchError, match="differ in size"):
        degrade_pair(a, b[:, :20], "ivf", seed=0)
    with pytest.raises(InputMismatchError, match="float"):
        degrade_pair((a * 255).byte(), b, "ivf")
    with pytest.raises(ConfigError, match="seed must be an integer"):
        degrade_pair(a, b, "ivf", seed=1.5)
    with pytest.raises(ConfigError, match="unknown task"):
        degrade_pair(a, b, "pan")


def test_degrade_spec_from_config():
    s = DegradeSpec.from_config({"task": "ivf", "n": [1, 3], "p": 0.8, "seed": 4})
    assert s.task == "IVF" and s.n == (1, 3) and s.p == 0.8
    assert DegradeSpec.from_config({}, task="MEF").task == "MEF"
    with pytest.raises(ConfigError, match="unknown key"):
        DegradeSpec.from_config({"task": "ivf", "prob": 1})
    with pytest.raises(ConfigError, match="probability"):
        DegradeSpec.from_config({"task": "ivf", "p": 1.5})
