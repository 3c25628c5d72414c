"""TITA network: equivalence with the official implementation, shapes, variants, precision."""

from __future__ import annotations

import math

import pytest
import torch

import unifuse
from unifuse.errors import ConfigError, WeightsError
from unifuse.models.tita import TITA, TITAConfig, VARIANTS
from unifuse.models.tita.checkpoint import from_official, save_tita_weights
from unifuse.models.tita.network import pad_to_multiple


@pytest.fixture(scope="module")
def case1(reference_dir):
    return torch.load(reference_dir / "tita_official_case1.pt", weights_only=False)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return TITA(embed_dim=12, num_heads=2, depths_ex=2, depths_fusion=(2,), depths_re=2).eval()


def test_matches_official_reference(case1):
    model = unifuse.load_model("tita", weights=case1["state_dict"])
    with torch.no_grad():
        out = model(case1["a"], case1["b"])
    assert out.shape == case1["fused"].shape and out.dtype == torch.float32
    assert (out - case1["fused"]).abs().max().item() < 1e-5


def test_matches_official_reference_on_the_pytorch_attention_path(case1, monkeypatch):
    """Where the C++ attention kernel is unavailable, the PyTorch attention path gives the same output."""
    from unifuse.models.layers import attention_native

    monkeypatch.setattr(attention_native, "supported", lambda q, bias: False)
    model = unifuse.load_model("tita", weights=case1["state_dict"])
    with torch.no_grad():
        out = model(case1["a"], case1["b"])
    assert (out - case1["fused"]).abs().max().item() < 1e-5


def test_native_and_pytorch_attention_paths_train_alike(monkeypatch):
    """Output and every parameter gradient of a training forward agree between the two attention paths."""
    from unifuse.models.layers import attention_native

    if not attention_native._fns():
        pytest.skip("native kernel not buildable here")
    torch.manual_seed(0)
    m = TITA(embed_dim=12, num_heads=2, depths_ex=2, depths_fusion=(2,), depths_re=2, drop_path_rate=0.0).train()
    a, b = torch.rand(2, 1, 32, 40), torch.rand(2, 1, 32, 40)
    runs = []
    for native in (True, False):
        if not native:
            monkeypatch.setattr(attention_native, "supported", lambda q, bias: False)
        m.zero_grad(set_to_none=True)
        out = m(a, b)
        out.square().mean().backward()
        runs.append((out.detach(), [p.grad.clone() for p in m.parameters() if p.grad is not None]))
    (o1, g1), (o2, g2) = runs
    assert (o1 - o2).abs().max() < 1e-5
    assert len(g1) == len(g2)
    for x, y in zip(g1, g2):
        assert (x - y).abs().max() <= 1e-4 * y.abs().max() + 1e-9


def test_official_checkpoint_wrapped_and_file(case1, tmp_path):
    sd = case1["state_dict"]
    for wrapped in ({"params_ema": sd}, {"params": sd}, {"state_dict": sd}):
        m = unifuse.load_model("tita", weights=wrapped)
        with torch.no_grad():
            assert (m(case1["a"], case1["b"]) - case1["fused"]).abs().max() < 1e-5
    # official .pth on disk, and our safetensors round trip
    p = tmp_path / "20000_E.pth"
    torch.save(sd, p)
    m = unifuse.load_model("tita", weights=str(p))
    st = save_tita_weights(m, tmp_path / "w.safetensors")
    m2 = unifuse.load_model("tita", weights=st)
    with torch.no_grad():
        assert torch.equal(m(case1["a"], case1["b"]), m2(case1["a"], case1["b"]))


def test_official_key_layout_covers_every_parameter(shared_dir):
    """Every official key from the spec's listing maps onto our model, shapes included."""
    own = TITA().state_dict()
    listing = (shared_dir / "spec" / "tita_official_state_dict.txt").read_text().splitlines()
    official = {}
    for line in listing:
        key, shape = line.split()
        official[key] = torch.empty([int(s) for s in shape.strip("[]").split(",") if s])
    assert len(official) == 594
    mapped = from_official(official)
    assert set(mapped) == set(own)
    assert all(mapped[k].shape == own[k].shape for k in own)


def test_bad_weights_name_the_keys(case1, tmp_path):
    sd = dict(case1["state_dict"])
    sd.pop("conv_last3.bias")
    sd["bogus.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match=r"missing keys: conv_last3\.bias.*unexpected keys: bogus\.weight"):
        unifuse.load_model("tita", weights=sd)
    sd = dict(case1["state_dict"])
    sd["conv_last3.bias"] = torch.zeros(2)
    with pytest.raises(WeightsError, match="shape mismatch.*conv_last3.bias"):
        unifuse.load_model("tita", weights=sd)
    bad = tmp_path / "junk.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pth: cannot read"):
        unifuse.load_model("tita", weights=str(bad))
    with pytest.raises(WeightsError, match="not found"):
        unifuse.load_model("tita", weights=str(tmp_path / "missing.safetensors"))


# Parameter counts: spec tita.md §11 table. The OAF branch ablations follow §13 (the weight
# generator outputs 2 values per remaining branch), i.e. the table's value minus 122, as the
# table's footnote on "w/o HPF" states.
SPEC_COUNTS = {
    "tita": 1_386_865, "tita_baseline": 973_681, "tita_irsf": 973_681, "tita_iesf": 973_681,
    "tita_ti": 1_297_201, "tita_ta": 1_063_345, "tita_sf_pa": 1_135_441, "tita_sf_ipa": 1_135_441,
    "tita_sf_te": 1_017_361, "tita_no_hpf": 1_377_127 - 122, "tita_no_add": 1_321_945 - 122,
    "tita_no_mul": 1_321_945 - 122, "tita_no_dw": 1_379_239,
}
PAPER_MILLIONS = {"tita": 1.39, "tita_baseline": 0.97, "tita_irsf": 0.97, "tita_iesf": 0.97, "tita_ti": 1.30,
                  "tita_ta": 1.06, "tita_sf_pa": 1.14, "tita_sf_ipa": 1.14, "tita_sf_te": 1.02,
                  "tita_no_hpf": 1.38, "tita_no_add": 1.32, "tita_no_mul": 1.32, "tita_no_dw": 1.38}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_parameter_counts(name):
    n = sum(p.numel() for p in unifuse.create_model(name).parameters())
    assert n == SPEC_COUNTS[name]
    assert round(n / 1e6, 2) == PAPER_MILLIONS[name]


def test_without_unused_convs():
    assert sum(p.numel() for p in TITA(keep_unused_convs=False).parameters()) == 1_378_435


@pytest.mark.parametrize("name", ["tita_baseline", "tita_irsf", "tita_sf_pa", "tita_sf_te", "tita_no_dw", "tita_no_hpf"])
def test_variants_run(name):
    m = unifuse.create_model(name, embed_dim=12, num_heads=2, depths_ex=1, depths_fusion=(2,), depths_re=1).eval()
    a, b = torch.rand(2, 1, 13, 19), torch.rand(2, 1, 13, 19)
    with torch.no_grad():
        out = m(a, b)
    assert out.shape == (2, 1, 13, 19) and torch.isfinite(out).all()


@pytest.mark.parametrize("hw", [(1, 1), (1, 9), (7, 3), (8, 8), (17, 31), (40, 9)])
def test_any_size_keeps_shape(tiny, hw):
    a, b = torch.rand(2, 1, *hw), torch.rand(2, 1, *hw)
    with torch.no_grad():
        out = tiny(a, b)
    assert out.shape == (2, 1, *hw) and torch.isfinite(out).all()


def test_padding_is_reflect_then_cropped():
    x = torch.arange(1 * 1 * 5 * 6, dtype=torch.float32).view(1, 1, 5, 6)
    p = pad_to_multiple(x, 8)
    assert p.shape == (1, 1, 8, 8)
    assert torch.equal(p[..., :5, :6], x)
    assert torch.equal(p[..., 5, :6], x[..., 3, :])  # reflect: row 5 mirrors row 3
    assert torch.equal(p[..., :5, 6], x[..., :, 4])
    # a 1-pixel image is replicated, a 2-pixel side reflected repeatedly
    assert torch.equal(pad_to_multiple(torch.full((1, 1, 1, 1), 3.0), 8), torch.full((1, 1, 8, 8), 3.0))
    two = pad_to_multiple(torch.tensor([[[[1.0, 2.0]]]]), 4)
    assert two.shape == (1, 1, 4, 4) and torch.equal(two[0, 0, 0], torch.tensor([1.0, 2.0, 1.0, 2.0]))


def test_padding_matches_official_network_on_odd_size(case1):
    """The reference pair is 100×132 (100 is not a multiple of 8): crop-back is exercised."""
    assert case1["a"].shape[-2] % 8 != 0


def test_batch_is_independent(tiny):
    a, b = torch.rand(3, 1, 16, 24), torch.rand(3, 1, 16, 24)
    with torch.no_grad():
        full = tiny(a, b)
        single = torch.cat([tiny(a[i:i + 1], b[i:i + 1]) for i in range(3)])
    assert (full - single).abs().max() < 1e-5


def test_large_image_border_window_path_matches_full_mask(tiny, monkeypatch):
    """Shifted windows use a border-only mask path for many windows; it must equal the full mask."""
    from unifuse.models.layers import window_attention as wa

    a, b = torch.rand(1, 1, 80, 72), torch.rand(1, 1, 80, 72)  # 90 windows > threshold
    with torch.no_grad():
        fast = tiny(a, b)
        monkeypatch.setattr(wa, "_FULL_MASK_MAX_WINDOWS", 10**9)
        full = tiny(a, b)
    assert (fast - full).abs().max() < 1e-5


@pytest.mark.parametrize("threads", [1, 2])
def test_blockwise_inference_matches_whole_map_path(tiny, monkeypatch, threads):
    """Inference runs each block piece by piece (worker threads when T > 1); it must equal the
    whole-map path (gather, full-map attention with the border-mask split, scatter)."""
    from unifuse.models.layers import cross_block, swin_block, window

    monkeypatch.setattr(window, "PIECE_WINDOWS", 7)  # several interior and border pieces
    monkeypatch.setattr(swin_block, "WHOLE_MAP_MAX_TOKENS", 0)  # blockwise on one thread too
    window._pieces_cached.cache_clear()
    a, b = torch.rand(2, 1, 80, 72), torch.rand(2, 1, 80, 72)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        with torch.no_grad():
            pieces = tiny(a, b)
            assert torch.get_num_threads() == threads
            for mod in (swin_block, cross_block):
                monkeypatch.setattr(mod, "blockwise_ok", lambda tokens, device: False)
            whole = tiny(a, b)
    finally:
        torch.set_num_threads(old)
        window._pieces_cached.cache_clear()
    assert (pieces - whole).abs().max() < 1e-5


def test_training_mode_no_grad_blockwise_draws_drop_path_like_the_whole_map_path(monkeypatch):
    """The no-grad loss re-evaluation of training (train mode, drop-path on) also runs block by
    block: with the same seed it draws the same per-sample drop-path factors as the whole-map
    path, so both give the same output, which differs from eval mode (drop-path is active)."""
    from unifuse.models.layers import cross_block, swin_block

    monkeypatch.setattr(swin_block, "WHOLE_MAP_MAX_TOKENS", 0)  # blockwise whatever the thread count
    torch.manual_seed(0)
    net = TITA(embed_dim=12, num_heads=2, depths_ex=2, depths_fusion=(2,), depths_re=2, drop_path_rate=0.5).train()
    a, b = torch.rand(4, 1, 32, 40), torch.rand(4, 1, 32, 40)
    with torch.no_grad():
        torch.manual_seed(1)
        pieces = net(a, b)
        for mod in (swin_block, cross_block):
            monkeypatch.setattr(mod, "blockwise_ok", lambda tokens, device: False)
        torch.manual_seed(1)
        whole = net(a, b)
        evaluated = net.eval()(a, b)
    assert (pieces - whole).abs().max() < 1e-5
    assert (pieces - evaluated).abs().max() > 1e-3


def test_bf16_close_to_fp32(case1):
    m32 = unifuse.load_model("tita", weights=case1["state_dict"])
    # set_precision forces bf16 autocast (load_model runs fp32 on CPUs without native bf16)
    m16 = unifuse.load_model("tita", weights=case1["state_dict"]).set_precision("bf16")
    with torch.no_grad():
        o32, o16 = m32(case1["a"], case1["b"]), m16(case1["a"], case1["b"])
    assert o16.dtype == torch.float32
    # PSNR against the fp32 output over its dynamic range
    rng = (o32.max() - o32.min()).item()
    psnr = 10 * math.log10(rng**2 / ((o16 - o32) ** 2).mean().item())
    assert psnr > 35


def test_float64_model_computes_and_returns_float64(case1):
    m32 = unifuse.load_model("tita", weights=case1["state_dict"])
    m64 = unifuse.load_model("tita", weights=case1["state_dict"]).double()
    a, b = case1["a"][..., :40, :48], case1["b"][..., :40, :48]
    with torch.no_grad():
        o32, o64 = m32(a, b), m64(a.double(), b.double())
    assert o64.dtype == torch.float64 and o32.dtype == torch.float32  # no silent cast to float32
    assert (o64 - o32.double()).abs().max() < 1e-4
    assert (o64 - o64.float().double()).abs().max() > 0  # values carry float64 precision, not a float32 round trip


def test_config_validation():
    with pytest.raises(ConfigError, match="fusion_layout"):
        TITAConfig(fusion_layout="XX")
    with pytest.raises(ConfigError, match="unknown TITA config key"):
        TITAConfig.from_dict({"embed_dims": 3})
    with pytest.raises(ConfigError, match="oaf_branches"):
        TITA(oaf_branches=("hpf", "foo"))
    with pytest.raises(ConfigError, match="precision"):
        unifuse.load_model("tita", weights="random", precision="fp8")
    with pytest.raises(ConfigError, match="GPU"):
        unifuse.load_model("tita", weights="random", precision="fp16")


def test_train_mode_gradients_flow(tiny):
    m = TITA(embed_dim=12, num_heads=2, depths_ex=1, depths_fusion=(2,), depths_re=1).train()
    a, b = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    m(a, b).mean().backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    unused = {id(p) for n, p in m.named_parameters() if "_B." in n and "conv_first" in n}
    assert all(g is not None for p, g in zip(m.parameters(), grads) if id(p) not in unused)


def test_training_attention_path_matches_inference_path(case1):
    """With gradients on, attention is written out explicitly; it must equal the SDPA path."""
    m = TITA(drop_path_rate=0.0)
    m.load_weights(case1["state_dict"])
    m.train()
    a, b = case1["a"][..., :64, :72], case1["b"][..., :64, :72]
    out_grad = m(a, b)
    with torch.no_grad():
        out_nograd = m(a, b)
    assert (out_grad.detach() - out_nograd).abs().max() < 1e-5


def test_cached_bias_follows_weight_updates(case1):
    """The eval-mode relative-position bias cache is invalidated when weights change."""
    m = unifuse.load_model("tita", weights="random")
    with torch.no_grad():
        m(case1["a"][..., :16, :16], case1["b"][..., :16, :16])  # fills the caches
    m.load_weights(case1["state_dict"])
    with torch.no_grad():
        assert (m(case1["a"], case1["b"]) - case1["fused"]).abs().max() < 1e-5


def test_load_from_training_run_folder(tmp_path):
    """A run folder (model.json + EMA weights) gives the architecture and weights."""
    import json

    from safetensors.torch import save_file

    src = TITA(embed_dim=12, num_heads=2, depths_ex=1, depths_fusion=(2,), depths_re=1)
    save_file(src.state_dict(), str(tmp_path / "model_ema.safetensors"))
    (tmp_path / "model.json").write_text(json.dumps({"model": "tita", "config": src.config.to_dict(),
                                                     "weights": {"ema": "model_ema.safetensors"}}))
    m = unifuse.load_model("tita", weights=str(tmp_path))
    assert m.config.embed_dim == 12
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), src.state_dict().values()))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsError, match="not a training run folder"):
        unifuse.load_model("tita", weights=str(empty))


def test_load_from_run_in_progress_uses_newest_checkpoint_ema(tmp_path):
    """Without model.json, the newest checkpoint's EMA weights and model config are used."""
    from unifuse.training.checkpoint import save_checkpoint

    small = dict(embed_dim=12, num_heads=2, depths_ex=1, depths_fusion=(2,), depths_re=1)
    live, ema_old, ema_new = (TITA(**small) for _ in range(3))
    cfg = {"config": {"model": {"name": "tita", **src_cfg}} for src_cfg in [live.config.to_dict()]}
    save_checkpoint(tmp_path / "checkpoints", 10, live.state_dict(), ema_old.state_dict(), cfg)
    save_checkpoint(tmp_path / "checkpoints", 20, live.state_dict(), ema_new.state_dict(), cfg)
    m = unifuse.load_model("tita", weights=str(tmp_path))
    assert m.config.embed_dim == 12
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), ema_new.state_dict().values()))


def test_inference_mode_then_no_grad_then_training(tiny):
    """Worker threads get the caller's inference mode; caches built under it stay normal tensors."""
    from unifuse.models.layers import window

    window._pieces_cached.cache_clear()
    window._window_order_cached.cache_clear()
    a, b = torch.rand(1, 1, 48, 40), torch.rand(1, 1, 48, 40)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with torch.inference_mode():
            o1 = tiny(a, b)
        with torch.no_grad():
            o2 = tiny(a, b)
    finally:
        torch.set_num_threads(old)
    assert (o1 - o2).abs().max() < 1e-6
    import copy

    m = copy.deepcopy(tiny).train()
    m(a, b).mean().backward()
    assert all(p.grad is not None for n, p in m.named_parameters() if "conv_first1_B" not in n and "conv_first2_B" not in n)
