"""LoRA/DoRA: injected where the family's patterns say, counted per block, sized as the formula says."""

from __future__ import annotations

import re

import pytest
import torch
from peft.tuners.lora import LoraLayer
from torch import nn

from densebench.adapters import build_adapter
from densebench.backbones.blocks import block_stacks
from densebench.backbones import build_backbone, pad_to_multiple
from densebench.errors import ConfigError

from .support import INPUT_HW, MODELS, make_cfg

TARGET_SETS = ("attn", "attn_mlp", "all_linear")


def _adapted(model_name: str, strategy: str, **overrides: object):
    cfg = make_cfg(model_name, strategy, **overrides)
    return build_adapter(build_backbone(cfg.model), cfg.adapter)


@pytest.mark.parametrize("target_set", TARGET_SETS)
def test_parameter_count_is_rank_times_in_plus_out_per_targeted_linear(model_name, low_rank, target_set):
    plain = build_backbone(MODELS[model_name])
    regex = plain.lora_targets[target_set]
    linears = [m for n, m in plain.named_modules() if re.fullmatch(regex, n)]
    rank = 4
    expected = sum(rank * (m.in_features + m.out_features) for m in linears)
    if low_rank == "dora":
        expected += sum(m.out_features for m in linears)
    adapter = _adapted(model_name, low_rank, rank=rank, target_set=target_set)
    assert linears and all(isinstance(m, nn.Linear) for m in linears)
    assert sum(p.numel() for _, p in adapter.own_parameters()) == expected


def test_attn_target_on_a_timm_vit_is_six_r_d_per_block():
    # The paper's count for fused qkv (d→3d) + proj (d→d): r(d+3d) + r(d+d) = 6rd per block.
    adapter = _adapted("demo_vit", "lora", rank=16)
    d, depth = adapter.backbone.embed_dim, len(adapter.backbone.model.blocks)
    assert sum(p.numel() for _, p in adapter.own_parameters()) == 6 * 16 * d * depth


def test_attn_target_adapts_input_and_output_projections_of_every_block(model_name):
    adapter = _adapted(model_name, "lora")
    ((path, stack),) = block_stacks(adapter.backbone)
    per_block = [adapter.block_counts[(path, name)] for name, _ in stack.named_children()]
    assert min(per_block) >= 2, f"{model_name}: adapted Linears per block {per_block}"


def test_injected_adapters_start_as_the_identity(model_name, low_rank):
    # B = 0 (and DoRA's magnitude = the weight's row norms) so the adapted backbone starts unchanged.
    torch.manual_seed(0)
    plain = build_backbone(MODELS[model_name]).eval()
    torch.manual_seed(0)
    adapter = _adapted(model_name, low_rank).eval()
    x = pad_to_multiple(torch.randn(1, 3, *INPUT_HW), plain.patch_size)
    with torch.no_grad():
        torch.testing.assert_close(adapter.backbone(x)[-1], plain(x)[-1])


def test_alpha_defaults_to_rank_so_the_update_scale_is_one():
    adapter = _adapted("demo_vit", "lora", rank=8)
    layers = [m for m in adapter.backbone.modules() if isinstance(m, LoraLayer)]
    assert layers and all(m.scaling["default"] == 1.0 for m in layers)


def test_dora_magnitude_is_one_value_per_output_row():
    adapter = _adapted("demo_vit", "dora")
    qkv = adapter.backbone.model.blocks[0].attn.qkv
    magnitude = qkv.lora_magnitude_vector["default"].weight
    torch.testing.assert_close(magnitude, qkv.base_layer.weight.norm(dim=1))


def test_base_weights_are_frozen_and_only_peft_parameters_train(low_rank):
    adapter = _adapted("demo_vit", low_rank)
    trainable = {n for n, p in adapter.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in adapter.own_parameters()}
    assert all("lora_" in n for n in trainable)


def test_unknown_target_set_names_the_model_and_the_known_sets():
    with pytest.raises(ConfigError, match=r"model 'demo_vit'.*target_set=mlp_only.*known: all_linear, attn"):
        _adapted("demo_vit", "lora", target_set="mlp_only")


@pytest.mark.parametrize(
    ("regex", "message"),
    [
        (r"model\.blocks\.0\.attn\.(qkv|proj)", r"adapted 0 Linear modules in block model\.blocks\.1 but 2"),
        (r"model\.blocks\.\d+\.attn\.qkv|model\.blocks\.0\.attn\.proj", r"adapted 1 Linear modules in block"),
        (r"model\.blocks\.\d+\.attn\.nothing", r"matches no module"),
        (r"model\.patch_embed\.proj", r"selects non-Linear modules \(e\.g\. model\.patch_embed\.proj\)"),
    ],
)
def test_incomplete_injection_fails_loudly_naming_the_model(monkeypatch, regex, message):
    from densebench.backbones.families.timm_vit import TimmViT

    monkeypatch.setattr(TimmViT, "lora_targets", {"attn": regex})
    with pytest.raises(ConfigError, match=rf"model 'demo_vit'.*{message}"):
        _adapted("demo_vit", "lora")
