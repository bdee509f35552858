"""The Transformer adapter: paper-default blocks over the backbone's full token sequence."""

from __future__ import annotations

import pytest
import torch

from densebench.adapters import build_adapter
from densebench.adapters.strategies.transformer import default_heads
from densebench.backbones import build_backbone
from densebench.errors import ConfigError

from .support import INPUT_HW, make_cfg


def _adapter(model_name: str = "demo_vit", **overrides: object):
    cfg = make_cfg(model_name, "transformer", **overrides)
    return build_adapter(build_backbone(cfg.model), cfg.adapter)


def test_blocks_see_prefix_tokens_and_the_map_drops_them():
    adapter = _adapter("tiny_timm_p14_reg4_swiglu")  # 1 class + 4 register tokens
    backbone = adapter.backbone
    seen = []
    adapter.blocks[0].register_forward_pre_hook(lambda mod, args: seen.append(tuple(args[0].shape)))
    out = adapter(torch.randn(2, 3, *INPUT_HW))
    h, w = backbone.grid(*INPUT_HW)
    assert seen == [(2, backbone.num_prefix_tokens + h * w, backbone.embed_dim)]
    assert backbone.num_prefix_tokens == 5
    assert tuple(out.map.shape) == (2, backbone.embed_dim, h, w)


@pytest.mark.parametrize(("dim", "heads"), [(32, 1), (384, 6), (768, 12), (1024, 16), (1280, 20), (1536, 24)])
def test_default_heads_are_width_over_64_at_least_one(dim, heads):
    assert default_heads(dim) == heads


def test_defaults_are_two_layerscaled_blocks_with_linear_stochastic_depth_and_a_final_norm():
    adapter = _adapter()
    dim = adapter.backbone.embed_dim
    assert len(adapter.blocks) == 2
    assert [b.attn.num_heads for b in adapter.blocks] == [default_heads(dim)] * 2
    for block in adapter.blocks:
        assert torch.all(block.ls1.gamma == 1e-5) and torch.all(block.ls2.gamma == 1e-5)
        assert block.mlp.fc1.out_features == 4 * dim
        assert block.attn.qkv.bias is not None
    assert [getattr(b.drop_path1, "drop_prob", 0.0) for b in adapter.blocks] == pytest.approx([0.0, 0.1])
    assert isinstance(adapter.norm, torch.nn.LayerNorm)


def test_parameter_count_is_12d2_plus_15d_per_block_plus_the_final_norm():
    adapter = _adapter("tiny_timm_p16_ls", depth=3)
    d = adapter.backbone.embed_dim
    assert sum(p.numel() for _, p in adapter.own_parameters()) == 3 * (12 * d * d + 15 * d) + 2 * d


def test_heads_not_dividing_the_width_is_a_config_error():
    with pytest.raises(ConfigError, match="adapter.num_heads"):
        _adapter(num_heads=3)
