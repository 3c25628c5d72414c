"""TC-MoA network mechanisms on the ``tiny`` preset, module placement and official parameter counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import unifuse
from unifuse.errors import ConfigError, InputMismatchError
from unifuse.models.tcmoa import PromptControl, TCMoA, TCMoAConfig, parse_task, preset_config
from unifuse.models.tcmoa.backbone import Block
from unifuse.models.tcmoa.pos_embed import resized_pos_embed

#: parameters of the official network (its loss helpers hold 72 more: four Sobel kernels)
OFFICIAL = {"base": 115_772_597, "large": 340_886_992}
OFFICIAL_LOSS_KERNELS = 2 * 27 + 2 * 9


def _meta(preset: str) -> TCMoA:
    with torch.device("meta"):
        return TCMoA(preset_config(preset))


@pytest.mark.parametrize("preset", ["base", "large"])
def test_parameter_count_equals_official(preset):
    net = _meta(preset)
    total = sum(p.numel() for p in net.parameters())
    source_emb = sum(p.numel() for n, p in net.named_parameters() if ".modal_shifts." in n)
    assert source_emb == 6 * sum(m.dim for m in net.moa_modules().values())
    # the official code keeps the source embeddings out of its parameters (spec §4.5)
    assert total - source_emb + OFFICIAL_LOSS_KERNELS == OFFICIAL[preset]


def test_module_placement():
    large, base = preset_config("large"), preset_config("base")
    assert large.module_positions(24) == [1, 5, 9, 13, 17, 21] and large.module_positions(8) == [1, 5]
    assert base.module_positions(12) == [1, 5, 9]
    net = _meta("large")
    assert len(net.blocks_MoA) == 6 and len(net.decoder_blocks_MoA) == 2
    assert len(net.en_relative_position) == 12 and len(net.de_relative_position) == 4
    assert net.blocks_MoA[0].MoA.experts[0].fc1.weight.shape == (32, 256)
    assert len(_meta("base").blocks_MoA) == 3


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    net = unifuse.load_model("tcmoa", weights="random", preset="tiny")
    with torch.no_grad():  # routers are zero-initialised; give them something to route with
        for m in net.moa_modules().values():
            m.MoA.w_gate.normal_(0, 1)
    return net


def test_shapes_ranges_and_prompts(tiny):
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 64, 96, generator=g), torch.rand(2, 1, 64, 96, generator=g)
    with torch.no_grad():
        out = tiny(a, b, task="ivf")
        feats = tiny.forward_features(tiny.normalize(a), tiny.normalize(b), "mef")
    assert out.shape == (2, 3, 64, 96) and out.min() >= 0 and out.max() <= 1
    assert feats.decoder.shape == (2, 3, 64, 96) and feats.grid == (8, 12)
    assert list(feats.modules) == ["enc0", "enc1", "dec0"]
    for m in feats.modules.values():
        for p in (m.prompt_x, m.prompt_y):
            assert p.shape == (2, 96, 1) and (p > 0).all() and (p < 1).all()
        n = (m.routing.gates > 0).sum(1)  # top-2, minus gates under the 1e-4 threshold
        assert n.max() == 2 and n.min() >= 1


def test_any_size_keeps_the_input_size(tiny):
    a, b = torch.rand(1, 3, 50, 70), torch.rand(1, 3, 50, 70)
    for geometry in ("official", "pad", "tile"):
        tiny.config.geometry = geometry
        with torch.no_grad():
            assert tiny(a, b, task="mff").shape == (1, 3, 50, 70)
    tiny.config.geometry = "official"
    big = torch.rand(1, 3, 150, 140)  # both sides > 4 units (128): official 128-px tiles
    with torch.no_grad():
        out = tiny(big, big, task="mef")
        first = tiny(big[..., :128, :128], big[..., :128, :128], task="mef")
    assert out.shape == big.shape
    # tiles are fused alone and pasted in raster order: the last tile (bottom-right) wins overlaps
    last = tiny(big[..., 22:, 12:], big[..., 22:, 12:], task="mef")
    assert torch.allclose(out[..., 128:, 128:], last[..., 106:, 116:], atol=1e-6)
    assert torch.allclose(out[..., :22, :12], first[..., :22, :12], atol=1e-6)


def test_prompt_control(tiny):
    x = tiny.normalize(torch.rand(1, 3, 64, 64))
    y = tiny.normalize(torch.rand(1, 3, 64, 64))
    with torch.no_grad():
        base = tiny.forward_features(x, y, 0)
        flat = tiny.forward_features(x, y, 0, PromptControl(alpha=0.0, beta=0.0))
        up = tiny.forward_features(x, y, 0, PromptControl(beta=0.1, where="decoder"))
    for m in flat.modules.values():
        assert torch.equal(m.prompt_x, torch.full_like(m.prompt_x, 0.5))
        assert torch.equal(m.prompt_y, torch.full_like(m.prompt_y, 0.5))
    # the encoder is untouched by a decoder-only control; the decoder prompts move by ±beta
    assert torch.equal(up.modules["enc1"].prompt_x, base.modules["enc1"].prompt_x)
    d0, d1 = base.modules["dec0"], up.modules["dec0"]
    assert torch.allclose(d1.prompt_x, d0.prompt_x + 0.1, atol=1e-6) and torch.allclose(d1.prompt_y, d0.prompt_y - 0.1, atol=1e-6)


def test_router_mixture_changes_output_between_tasks(tiny):
    a, b = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        f0, f1 = tiny(a, b, task="ivf"), tiny(a, b, task="mef")
        onehot = tiny(a, b, task=[0.0, 1.0, 0.0])
        mix = tiny(a, b, task=[0.5, 0.5, 0.0])
    assert torch.equal(onehot, f1)
    assert not torch.allclose(mix, f0) and not torch.allclose(mix, f1)


def test_parse_task():
    assert parse_task("IVF") == 0 and parse_task("mef") == 1 and parse_task("mff") == 2 and parse_task("medical") == 0
    assert parse_task("0,0,1") == 2
    assert torch.allclose(parse_task("0.2,0.5,0.3"), torch.tensor([0.2, 0.5, 0.3]))
    for bad in ("fog", "0.5,0.6,0", [1.0, 0.0], 3, "-1,1,1"):
        with pytest.raises(ConfigError):
            parse_task(bad)


def test_training_path_noise_gradients_and_freezing(tiny):
    net = TCMoA(preset_config("tiny")).train()
    x, y = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    out = net.forward_features(x, y, 1)
    assert out.aux_loss.requires_grad
    (out.decoder.abs().mean() + out.aux_loss).backward()
    assert net.blocks_MoA[0].MoA.w_noise.grad is not None and net.blocks[0].attn.qkv.weight.grad is not None
    net.freeze_backbone(True)
    names = {n for n, p in net.named_parameters() if p.requires_grad}
    assert "blocks.0.attn.qkv.weight" not in names and "decoder_pred.weight" not in names
    assert {"Alpha_encoder", "blocks_MoA.0.MoA.w_gate", "en_relative_position.0.relative_position_bias_table",
            "FusionLayer.0.conv2.weight", "blocks_MoA.0.modal_shifts.3"} <= names
    assert sum(p.numel() for p in net.trainable_parameters()) < sum(p.numel() for p in net.parameters())
    assert "trainable" in net.parameter_summary()


def test_window_attention_is_global_when_the_window_covers_the_map():
    torch.manual_seed(0)
    blk = Block(16, 2, 4.0, 1e-6).eval()
    x = torch.randn(1, 16, 16)
    bias = torch.zeros(2, 16, 16)
    with torch.no_grad():
        win = blk(x, (4, 4), bias, ws=4, shift=0)
        h = blk.norm1(x)
        q, k, v = blk.attn.qkv(h).view(1, 16, 3, 2, 8).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(1, 16, 16)
        ref = x + blk.attn.proj(att)
        ref = ref + blk.mlp(blk.norm2(ref))
    assert torch.allclose(win, ref, atol=1e-5)
    m = torch.randn(1, 8, 8, 3)
    assert torch.equal(torch.roll(torch.roll(m, (-3, -3), (1, 2)), (3, 3), (1, 2)), m)


def test_position_table_orientation():
    table = torch.randn(1, 1 + 14 * 14, 8)
    right = resized_pos_embed(table, 14, (4, 6))
    img = F.interpolate(table[:, 1:].reshape(1, 14, 14, 8).permute(0, 3, 1, 2), size=(4, 6), mode="bilinear")
    assert torch.equal(right, img.flatten(2).transpose(1, 2))
    official = F.interpolate(table[:, 1:].view(1, 14, 14, -1).permute(0, 3, 1, 2), size=(6, 4), mode="bilinear")
    assert torch.equal(resized_pos_embed(table, 14, (4, 6), transpose=True), official.view(1, -1, 24).permute(0, 2, 1))
    assert torch.equal(resized_pos_embed(table, 14, (5, 5), transpose=True), resized_pos_embed(table, 14, (5, 5)))


def test_bad_inputs_and_config():
    net = TCMoA(preset_config("tiny"))
    with pytest.raises(InputMismatchError):
        net(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 64))
    with pytest.raises(InputMismatchError):
        net.forward_features(torch.rand(1, 3, 40, 32), torch.rand(1, 3, 40, 32))
    with pytest.raises(ConfigError):
        preset_config("huge")
    with pytest.raises(ConfigError):
        TCMoAConfig(combine="max")
    with pytest.raises(ConfigError):
        TCMoAConfig.from_official_config({"patch_size": 16})


def test_backbone_alone_equals_network_with_modules_blended_out():
    torch.manual_seed(0)
    net = TCMoA(preset_config("tiny")).eval()
    with torch.no_grad():
        net.Alpha_encoder.zero_()
        net.Alpha_decoder.zero_()  # alpha = 0: every module hands its input stream back unchanged
        x, y = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
        full = net.forward_features(x, y, 0).decoder
        alone = net.forward_backbone(x)
        masked = net.forward_backbone(x, token_mask=torch.rand(1, 64) < 0.5)
    assert torch.allclose(full, alone, atol=1e-5)
    assert alone.shape == masked.shape and not torch.allclose(alone, masked)


def test_bf16_precision_runs_close_to_fp32():
    torch.manual_seed(0)
    net = TCMoA(preset_config("tiny")).eval()
    a, b = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = net(a, b, task="mef")
        low = net.set_precision("bf16")(a, b, task="mef")
    assert low.dtype == torch.float32 and (low - ref).abs().max() < 0.1


def test_packed_linear_equals_plain_and_follows_weight_changes():
    from unifuse.models.layers import linear as L

    torch.manual_seed(0)
    net = TCMoA(preset_config("tiny", packed_linear=False)).eval()
    x, y = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        plain = net.forward_features(x, y, 2).decoder
        assert not L.is_cached(net.blocks[0].attn.qkv.weight)
        net.config.packed_linear = True
        packed = net.forward_features(x, y, 2).decoder
        assert (packed - plain).abs().max() <= 1e-5
        net.blocks[0].mlp.fc1.weight.mul_(2)  # the cached packed weight must be rebuilt
        changed = net.forward_features(x, y, 2).decoder
        net.config.packed_linear = False
        assert (changed - net.forward_features(x, y, 2).decoder).abs().max() <= 1e-5
    if L._ONEDNN:
        assert L.is_cached(net.blocks[0].attn.qkv.weight)
    assert list(net.state_dict()) == list(TCMoA(preset_config("tiny")).state_dict())
    net.config.packed_linear = True  # with autograd: the packed path's own backward
    out = net.train().forward_features(x, y, 0)
    out.decoder.mean().backward()
    assert net.blocks[0].attn.qkv.weight.grad is not None
