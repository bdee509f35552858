"""Backbone parameters and forward FLOPs, counted on the meta device."""

from __future__ import annotations

import pytest

from densebench.bench.flops import backbone_cost, flops_by_model


def vit_flops(tokens: int, dim: int, depth: int, patch: int, mlp_ratio: float = 4.0) -> int:
    """A ViT's matmul FLOPs (2 per multiply-add): patch embedding, then per block qkv, attention, proj, MLP."""
    patches = tokens - 1
    embed = 2 * patches * 3 * patch * patch * dim
    linear = 2 * tokens * dim * (3 * dim + dim + 2 * int(mlp_ratio * dim))
    attention = 2 * 2 * tokens * tokens * dim  # q·kᵀ and attn·v over all heads
    return embed + depth * (linear + attention)


def test_tiny_vit_flops_match_the_analytic_count(compose_cfg) -> None:
    model = compose_cfg(["model.variant=tiny"]).model  # demo_vit tiny: patch 8, width 32, 2 blocks, 1 class token
    cost = backbone_cost(model, 32)
    assert cost["tokens"] == 16 and cost["input_size"] == 32
    assert cost["flops"] == vit_flops(tokens=17, dim=32, depth=2, patch=8)


def test_parameter_count_is_the_built_models(compose_cfg) -> None:
    from densebench.backbones import build_backbone

    model = compose_cfg(["model.variant=tiny"]).model
    assert backbone_cost(model, 32)["params"] == build_backbone(model).num_params()


def test_counted_size_is_padded_to_the_patch_grid(compose_cfg) -> None:
    model = compose_cfg(["model.variant=tiny"]).model
    assert backbone_cost(model, 30)["input_size"] == 32


def test_models_without_a_buildable_config_are_named_not_counted(compose_cfg) -> None:
    model = compose_cfg(["model.variant=tiny"]).model
    counted, failed = flops_by_model({"demo_vit": model, "mystery": {"name": "mystery"}}, 32)
    assert counted == {"demo_vit": pytest.approx(vit_flops(17, 32, 2, 8))}
    assert set(failed) == {"mystery"} and "no model config" in failed["mystery"]
