"""Floating-point work of one training step, so throughput can be read against a machine's peak.

Counted with PyTorch's `FlopCounterMode` (matmuls, convolutions, attention; forward, backward and
any checkpointing recompute; element-wise ops are not counted). Two kernels it does not know are
added: the oneDNN GEMM behind `runtime.cpu_linear=onednn` and PyTorch's CPU flash attention, so the
count is the same whichever path ran.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.utils import flop_counter

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
