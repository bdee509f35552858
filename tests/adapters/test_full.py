"""`full`: layer-wise LR decay as optimiser-group multipliers, and gradient checkpointing."""

from __future__ import annotations

import copy

import pytest
import torch

from densebench.adapters import build_adapter
from densebench.backbones import build_backbone
from densebench.engine.optim import param_groups
from densebench.errors import ConfigError
from densebench.model import build_model

from .support import INPUT_HW, NUM_CLASSES, make_cfg


def _adapter(model_name: str = "demo_vit", strategy: str = "full", **overrides: object):
    cfg = make_cfg(model_name, strategy, **overrides)
    return build_adapter(build_backbone(cfg.model), cfg.adapter)


def _multipliers(**overrides: object) -> dict[str, float]:
    """Backbone parameter name → the engine's learning-rate multiplier for it."""
    cfg = make_cfg("demo_vit", "full", **overrides)
    model = build_model(cfg, NUM_CLASSES)
    by_id = {id(p): g["lr_mult"] for g in param_groups(model, cfg) for p in g["params"]}
    return {n: by_id[id(p)] for n, p in model.adapter.backbone.named_parameters()}


def test_layer_decay_scales_each_block_by_decay_to_the_distance_from_the_top():
    mult = _multipliers(layer_decay=0.5, backbone_lr_mult=0.1)  # demo_vit tiny: 2 blocks
    expected = {
        "model.cls_token": 0.0125,
        "model.pos_embed": 0.0125,
        "model.patch_embed.proj.weight": 0.0125,
        "model.blocks.0.attn.qkv.weight": 0.025,
        "model.blocks.1.mlp.fc2.bias": 0.05,
        "model.norm.weight": 0.1,
    }
    assert {k: mult[k] for k in expected} == pytest.approx(expected)


def test_without_decay_every_backbone_weight_trains_at_backbone_lr_mult():
    assert set(_multipliers(backbone_lr_mult=0.1).values()) == {0.1}


def test_layer_decay_outside_zero_one_is_a_config_error():
    with pytest.raises(ConfigError, match="adapter.layer_decay"):
        _adapter(layer_decay=1.5)


def _loss_and_grads(model, x):
    model.train()
    model.zero_grad()
    loss = model(x).square().mean()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("trains_backbone_path", ["full", "lora"])
def test_grad_checkpointing_recomputes_blocks_and_gives_the_same_gradients(trains_backbone_path):
    x = torch.randn(2, 3, *INPUT_HW)
    models = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        cfg = make_cfg("demo_vit", trains_backbone_path, grad_checkpointing=checkpointing)
        models.append(build_model(cfg, NUM_CLASSES))
    calls = []  # a pre-hook: non-reentrant checkpointing stops recomputing once it has what backward needs
    models[1].adapter.backbone.model.blocks[0].attn.register_forward_pre_hook(lambda *_: calls.append(1))
    (loss0, grads0), (loss1, grads1) = (_loss_and_grads(m, x) for m in models)
    assert len(calls) == 2, "the checkpointed block should run again during backward"
    assert torch.equal(loss0, loss1) and grads0.keys() == grads1.keys()
    for name in grads0:
        torch.testing.assert_close(grads1[name], grads0[name], msg=name)


def test_a_copy_of_a_checkpointed_model_runs_its_own_weights():
    model = build_model(make_cfg("demo_vit", "full", grad_checkpointing=True), NUM_CLASSES).train()
    clone = copy.deepcopy(model)
    with torch.no_grad():
        for p in clone.adapter.backbone.parameters():
            p.zero_()
    x = torch.randn(1, 3, *INPUT_HW)
    assert not torch.equal(clone(x), model(x))


def _attn_calls_in_one_step(min_tokens: int) -> int:
    torch.manual_seed(0)
    model = build_model(
        make_cfg("demo_vit", "lora", grad_checkpointing="auto", checkpoint_min_tokens=min_tokens), NUM_CLASSES
    )
    calls = []
    model.adapter.backbone.model.blocks[0].attn.register_forward_pre_hook(lambda *_: calls.append(1))
    _loss_and_grads(model, torch.randn(2, 3, *INPUT_HW))
    return len(calls)


def test_auto_checkpointing_recomputes_only_from_the_token_threshold():
    tokens = 1 + (-(-INPUT_HW[0] // 8)) * (-(-INPUT_HW[1] // 8))  # demo_vit: patch 8 + one class token
    assert _attn_calls_in_one_step(tokens) == 2
    assert _attn_calls_in_one_step(tokens + 1) == 1


def test_unknown_checkpointing_mode_is_a_config_error():
    with pytest.raises(ConfigError, match=r"adapter.grad_checkpointing=sometimes: expected true, false or auto"):
        _adapter(grad_checkpointing="sometimes")
