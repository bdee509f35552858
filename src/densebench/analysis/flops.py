"""Parameter counts and forward FLOPs of backbones, counted on the meta device.

A backbone built under `torch.device("meta")` has shapes but no storage, so even a 1.1 B-parameter
ViT-g is built and "run" in well under a second on a laptop: `FlopCounterMode` counts the FLOPs of
every aten op from shapes alone (matmuls 2·M·N·K, convolutions, attention kernels). Weights are never
loaded (`pretrained` is forced off), so no checkpoint is needed either.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from densebench.backbones import Backbone, build_backbone


def forward_flops(module: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs of one forward pass (a multiply-add counts as 2)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return int(counter.get_total_flops())


def meta_backbone(model_cfg: DictConfig | dict[str, Any]) -> Backbone:
    """The configured backbone with shapes only (no weights loaded, no memory used)."""
    cfg = OmegaConf.create(OmegaConf.to_container(model_cfg, resolve=True) if isinstance(model_cfg, DictConfig)
                           else model_cfg)
    cfg.pretrained = False
    with torch.device("meta"):
        return build_backbone(cfg)


def counted_size(backbone: Backbone, model_cfg: DictConfig | dict[str, Any], input_size: int) -> int:
    """The side the backbone actually sees: a fixed-input model's own size, else `input_size` padded to the patch grid."""
    fixed = model_cfg.get("fixed_input_size")
    if fixed:
        return int(fixed)
    p = backbone.patch_size
    return -(-int(input_size) // p) * p


def backbone_cost(model_cfg: DictConfig | dict[str, Any], input_size: int) -> dict[str, Any]:
    """{params, flops, input_size, tokens} of one forward pass of a single square image."""
    return dict(_cached_cost(json.dumps(_plain(model_cfg), sort_keys=True), int(input_size)))


def _plain(model_cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    return OmegaConf.to_container(model_cfg, resolve=True) if isinstance(model_cfg, DictConfig) else dict(model_cfg)


@functools.lru_cache(maxsize=256)
def _cached_cost(cfg_json: str, input_size: int) -> tuple[tuple[str, Any], ...]:
    cfg = json.loads(cfg_json)
    backbone = meta_backbone(cfg)
    side = counted_size(backbone, cfg, input_size)
    x = torch.empty(1, 3, side, side, device="meta")
    grid = backbone.grid(side, side)
    return (
        ("params", int(backbone.num_params())),
        ("flops", forward_flops(backbone, x)),
        ("input_size", side),
        ("tokens", grid[0] * grid[1]),
    )


def flops_by_model(model_cfgs: dict[str, dict[str, Any] | None], input_size: int) -> tuple[dict[str, float], dict[str, str]]:
    """Forward FLOPs per model name, and for the models that could not be counted, why.

    For reports: a model known only by name (no config with a `family`), or one whose family cannot be
    built in this installation, is reported as not counted instead of failing the whole report.
    """
    counted, failed = {}, {}
    for name, cfg in model_cfgs.items():
        if not cfg or not cfg.get("family"):
            failed[name] = "no model config (configs/model/<name>.yaml) to build it from"
            continue
        try:
            counted[name] = float(backbone_cost(cfg, input_size)["flops"])
        except Exception as exc:  # noqa: BLE001 - one unbuildable model must not sink the report
            failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return counted, failed
