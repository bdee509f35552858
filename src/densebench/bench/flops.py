"""The one FLOP counter: work of a training step (read against a machine's peak) and of a backbone's
forward pass (parameters and FLOPs on the meta device, for `analyze flops` and the report).

Counted with PyTorch's `FlopCounterMode` (matmuls, convolutions, attention; forward, backward and
any checkpointing recompute; element-wise ops are not counted). Two kernels it does not know are
added: the oneDNN GEMM behind `runtime.cpu_linear=onednn` and PyTorch's CPU flash attention, so the
count is the same whichever path ran.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils import flop_counter

from densebench.backbones.catalog import build_on_meta
from densebench.config import to_dict

_aten = torch.ops.aten


def _linear_pointwise_flop(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    """x (..., K) times weight (N, K) transposed."""
    return 2 * math.prod(x_shape[:-1]) * x_shape[-1] * w_shape[0]


def _as_registered(formula):
    """PyTorch's own formulas already take tensors (`_get_raw`): mark them so they are not wrapped twice."""

    def counted(*args, **kwargs):
        return formula(*args, **kwargs)

    counted._get_raw = True
    return counted


def _custom_formulas() -> dict:
    formulas = {
        _aten._scaled_dot_product_flash_attention_for_cpu: _as_registered(flop_counter.sdpa_flop),
        _aten._scaled_dot_product_flash_attention_for_cpu_backward: _as_registered(flop_counter.sdpa_backward_flop),
    }
    if hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        formulas[torch.ops.mkldnn._linear_pointwise] = _linear_pointwise_flop
    return formulas


def count_flops(fn: Callable[[], object]) -> float:
    """FLOPs of whatever `fn` runs (it runs once, for real)."""
    with flop_counter.FlopCounterMode(display=False, custom_mapping=_custom_formulas()) as counter:
        fn()
    return float(counter.get_total_flops())


def train_flops_per_image(model: nn.Module, input_size: int, device: torch.device) -> float:
    """FLOPs of one forward + backward of `model` on one `input_size`² image (training scales this by
    the batch). Gradients it leaves are cleared; BatchNorm running statistics move by one step."""
    model.train()
    image = torch.randn(1, 3, input_size, input_size, device=device)
    flops = count_flops(lambda: model(image).float().sum().backward())
    model.zero_grad(set_to_none=True)
    return flops


def counted_size(patch_size: int, model_cfg: DictConfig | dict[str, Any], input_size: int) -> int:
    """The side the backbone actually sees: a fixed-input model's own size, else `input_size` padded to the patch grid."""
    fixed = model_cfg.get("fixed_input_size")
    if fixed:
        return int(fixed)
    return -(-int(input_size) // patch_size) * patch_size


def backbone_cost(model_cfg: DictConfig | dict[str, Any], input_size: int) -> dict[str, Any]:
    """{params, flops, input_size, tokens} of one forward pass of a single square image, counted on the meta
    device: shapes without storage, so even a 1.1 B-parameter ViT-g costs well under a second and no weights."""
    return dict(_cached_cost(json.dumps(to_dict(model_cfg), sort_keys=True), int(input_size)))


@functools.lru_cache(maxsize=256)
def _cached_cost(cfg_json: str, input_size: int) -> tuple[tuple[str, Any], ...]:
    cfg = OmegaConf.create(json.loads(cfg_json))
    backbone = build_on_meta(cfg)
    side = counted_size(backbone.patch_size, cfg, input_size)
    x = torch.empty(1, 3, side, side, device="meta")
    grid = backbone.grid(side, side)
    with torch.no_grad():
        flops = count_flops(lambda: backbone(x))
    return (
        ("params", int(backbone.num_params())),
        ("flops", int(flops)),
        ("input_size", side),
        ("tokens", grid[0] * grid[1]),
    )


def flops_by_model(
    model_cfgs: dict[str, dict[str, Any] | None], input_size: int
) -> tuple[dict[str, float], dict[str, str]]:
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
