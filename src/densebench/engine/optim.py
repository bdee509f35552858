"""Loss, optimiser and learning-rate schedule.

Fixes to the paper's protocol: Dice honours the ignore label (smp's DiceLoss masks it before the
one-hot), norms/biases/tokens get no weight decay, and warmup + cosine is stepped per iteration over
exactly the run's length (the paper ran epoch 1 at LR 0 and let the cosine rise again after epoch 100).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import segmentation_models_pytorch as smp
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from densebench.errors import ConfigError
from densebench.model import Segmenter
from densebench.registry import Registry

NO_DECAY_NAMES = ("pos_embed", "cls_token", "reg_token", "position_embeddings", "mask_token", "register_tokens")


class DiceCE(nn.Module):
    def __init__(self, ignore_index: int) -> None:
        super().__init__()
        self.dice = smp.losses.DiceLoss("multiclass", from_logits=True, ignore_index=ignore_index)
        self.ce = nn.CrossEntropyLoss(ignore_index=ignore_index)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.dice(logits, target) + self.ce(logits, target)


LOSSES: Registry[Callable[[int], nn.Module]] = Registry("loss")
OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")


@LOSSES.register("dice")
def _dice(ignore_index: int) -> nn.Module:
    return smp.losses.DiceLoss("multiclass", from_logits=True, ignore_index=ignore_index)


@LOSSES.register("ce")
def _ce(ignore_index: int) -> nn.Module:
    return nn.CrossEntropyLoss(ignore_index=ignore_index)


LOSSES.register("dice_ce")(DiceCE)
OPTIMIZERS.register("adam")(torch.optim.Adam)  # the paper's: weight decay as an L2 term
OPTIMIZERS.register("adamw")(torch.optim.AdamW)  # decoupled weight decay


def build_loss(name: str, ignore_index: int) -> nn.Module:
    """`train.loss` by name; every loss leaves pixels labelled `ignore_index` out."""
    if name not in LOSSES:
        raise ConfigError(f"train.loss={name} is not known; use {', '.join(LOSSES.names())}")
    return LOSSES.get(name)(ignore_index)


def _no_decay(name: str, p: nn.Parameter) -> bool:
    return p.ndim <= 1 or name.endswith(".bias") or any(k in name for k in NO_DECAY_NAMES)


def param_groups(model: Segmenter, cfg: DictConfig) -> list[dict]:
    """Groups by (learning-rate multiplier, weight decay on/off) over trainable parameters."""
    groups_by_role = model.adapter.param_groups()
    backbone_ids = {id(p) for p in groups_by_role["backbone"]}
    mults = model.adapter.lr_multipliers()
    backbone_mult = float(cfg.adapter.get("backbone_lr_mult", 1.0))
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        mult = mults.get(id(p), backbone_mult if id(p) in backbone_ids else 1.0)
        groups.setdefault((mult, _no_decay(name, p)), []).append(p)
    wd = float(cfg.train.weight_decay)
    return [
        {"params": ps, "lr": float(cfg.train.lr) * mult, "weight_decay": 0.0 if no_decay else wd, "lr_mult": mult}
        for (mult, no_decay), ps in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1]))
    ]


def build_optimizer(model: Segmenter, cfg: DictConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg)
    if not groups:
        raise ConfigError("nothing to train: every parameter is frozen")
    name = cfg.train.optimizer
    if name not in OPTIMIZERS:
        raise ConfigError(f"train.optimizer={name} is not known; use {', '.join(OPTIMIZERS.names())}")
    return OPTIMIZERS.get(name)(groups, lr=float(cfg.train.lr), betas=tuple(cfg.train.betas))


def warmup_cosine(total_steps: int, warmup_steps: int, min_ratio: float):
    """LR factor per optimiser step: linear warmup from 1/warmup to 1, then cosine to min_ratio at the end."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: DictConfig, steps_per_epoch: int):
    total = steps_per_epoch * int(cfg.train.epochs)
    warmup = min(total, steps_per_epoch * int(cfg.train.warmup_epochs))
    min_ratio = float(cfg.train.min_lr) / float(cfg.train.lr)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, warmup, min_ratio))
