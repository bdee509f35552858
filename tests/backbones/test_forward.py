"""Tiny variants run the same code path as the full models: any H×W, intermediate layers, LoRA targets."""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest
import torch
from torch import nn

from densebench.backbones import build_backbone
from densebench.errors import ConfigError

from tests.backbones.support import ALL_MODELS, randomize_, shared_tiny, tiny_config


@pytest.mark.parametrize("name", ALL_MODELS)
def test_tiny_forward_on_a_non_square_odd_sized_input_gives_one_map_per_patch(name):
    backbone = shared_tiny(name)
    p = backbone.patch_size
    h, w = 2 * p + 3, 3 * p + 1  # neither side a multiple of the patch size
    with torch.no_grad():
        maps = backbone(torch.randn(2, 3, h, w))
    assert len(maps) == 1
    assert maps[0].shape == (2, backbone.embed_dim, math.ceil(h / p), math.ceil(w / p))
    assert torch.isfinite(maps[0]).all()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_layers_return_one_map_each_and_the_last_block_equals_the_default_output(name):
    default = build_backbone(tiny_config(name)).eval()
    randomize_(default)  # LayerScale starts near zero: make the blocks differ
    layered = build_backbone(tiny_config(name, "layers=[0,-1]")).eval()
    layered.load_state_dict(default.state_dict())
    p = default.patch_size
    x = torch.randn(1, 3, 2 * p, 3 * p)
    with torch.no_grad():
        maps, (last,) = layered(x), default(x)
    assert [m.shape for m in maps] == [last.shape, last.shape]
    torch.testing.assert_close(maps[1], last)
    assert not torch.allclose(maps[0], maps[1])


def test_a_layer_index_beyond_the_depth_is_a_config_error():
    with pytest.raises(ConfigError, match="model.layers has 7"):
        build_backbone(tiny_config("uni", "layers=[7]"))


def _block_of(module_name: str) -> int:
    return int(re.search(r"\.(\d+)\.", module_name).group(1))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_lora_attention_targets_hit_the_attention_projections_of_every_block_only(name):
    backbone = shared_tiny(name)
    modules = dict(backbone.named_modules())
    hits = [n for n in modules if re.fullmatch(backbone.lora_targets["attn"], n)]  # peft full-matches names
    assert hits and all(isinstance(modules[n], nn.Linear) for n in hits)
    per_block = Counter(_block_of(n) for n in hits)
    assert sorted(per_block) == list(range(backbone.num_blocks))
    assert set(per_block.values()) in ({2}, {4})  # fused qkv + out, or q, k, v + out
    assert not any("patch" in n or "embed" in n for n in hits)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_lora_all_linear_targets_every_linear_layer_and_attn_mlp_adds_the_mlp(name):
    backbone = shared_tiny(name)
    modules = dict(backbone.named_modules())
    linears = {n for n, m in modules.items() if isinstance(m, nn.Linear)}
    targets = {k: {n for n in modules if re.fullmatch(v, n)} for k, v in backbone.lora_targets.items()}
    assert targets["all_linear"] == linears
    assert targets["attn"] < targets["attn_mlp"] <= linears
    assert len(targets["attn_mlp"] - targets["attn"]) == 2 * backbone.num_blocks  # two MLP projections per block


def test_an_unknown_layer_name_in_arch_is_a_config_error():
    with pytest.raises(ConfigError, match="model.arch.mlp_layer=SwiGLU is not known"):
        build_backbone(tiny_config("virchow", "arch.mlp_layer=SwiGLU"))
