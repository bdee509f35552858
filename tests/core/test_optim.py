"""Schedule, parameter groups and losses (the paper's defects fixed)."""

from __future__ import annotations

import pytest
import torch

from densebench.engine.optim import build_loss, param_groups, warmup_cosine


def test_warmup_starts_above_zero_and_cosine_reaches_min_at_the_last_step():
    f = warmup_cosine(total_steps=100, warmup_steps=10, min_ratio=0.0)
    assert f(0) > 0  # the paper trained all of epoch 1 at LR 0
    assert f(9) == pytest.approx(1.0)
    assert f(99) == pytest.approx(0.0, abs=1e-3)
    after = [f(s) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(after, after[1:]))  # never climbs again


def test_scheduler_never_exceeds_the_base_lr_after_the_run_length():
    f = warmup_cosine(total_steps=50, warmup_steps=5, min_ratio=0.1)
    assert f(80) == pytest.approx(0.1)


def test_norms_biases_and_tokens_get_no_weight_decay(compose_cfg):
    from densebench.model import build_model

    cfg = compose_cfg(["model.variant=tiny", "adapter=full", "adapter.backbone_lr_mult=0.1"])
    model = build_model(cfg, 3)
    groups = param_groups(model, cfg)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    named = dict(model.named_parameters())
    assert id(named["adapter.backbone.model.pos_embed"]) not in decayed
    assert id(named["adapter.backbone.model.blocks.0.norm1.weight"]) not in decayed
    assert id(named["adapter.backbone.model.blocks.0.attn.qkv.weight"]) in decayed
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert lr_of[id(named["adapter.backbone.model.blocks.0.attn.qkv.weight"])] == pytest.approx(0.1 * cfg.train.lr)
    assert lr_of[id(named["decoder.head.weight"])] == pytest.approx(cfg.train.lr)


@pytest.mark.parametrize("name", ["dice", "ce", "dice_ce"])
def test_losses_ignore_pixels_labelled_255(name):
    loss = build_loss(name, 255)
    target = torch.randint(0, 3, (2, 8, 8))
    target[:, :4] = 255
    logits = torch.randn(2, 3, 8, 8)
    other = logits.clone()
    other[..., :4, :] = torch.randn(2, 3, 4, 8) * 10  # change only ignored pixels
    assert torch.isfinite(loss(logits, target))
    assert loss(logits, target).item() == pytest.approx(loss(other, target).item(), abs=1e-6)


@pytest.mark.parametrize("key,value", [("loss", "focal"), ("optimizer", "sgd")])
def test_unknown_loss_or_optimizer_is_a_config_error_naming_the_option_and_the_known(compose_cfg, key, value):
    from densebench.engine.optim import LOSSES, OPTIMIZERS, build_optimizer
    from densebench.errors import ConfigError
    from densebench.model import build_model

    cfg = compose_cfg(["model.variant=tiny"])  # composing would already refuse the name (settings.py)
    cfg.train[key] = value
    with pytest.raises(ConfigError) as err:
        build_loss(cfg.train.loss, 255) if key == "loss" else build_optimizer(build_model(cfg, 3), cfg)
    known = LOSSES.names() if key == "loss" else OPTIMIZERS.names()
    assert str(err.value) == f"train.{key}={value} is not known; use {', '.join(known)}"
