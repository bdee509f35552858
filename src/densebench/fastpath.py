"""Speed options that keep fp32 arithmetic: oneDNN Linear layers on CPU and channels-last convolutions.

Why (issue 9, measured with scripts/bench.py on a 2-vCPU AMD EPYC): PyTorch runs fp32 `nn.Linear`
on CPU through MKL's sgemm, which takes a slow code path on AMD CPUs (121-147 GFLOP/s for a ViT-L
MLP matrix) while oneDNN reaches 190-200 GFLOP/s on the same shapes; the decoder's convolutions are
oneDNN already but run 1.2x faster in NHWC than in NCHW. Neither option lowers precision: results
differ from the defaults only in summation order (about 1e-6 relative). Both are `runtime.*` keys,
recorded in metrics.json; `runtime.cpu_linear=native runtime.channels_last=false` turns them off.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from densebench.errors import ConfigError

CPU_LINEAR = ("onednn", "native")


def onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _mm(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x (M, K) times weight (N, K) transposed (+ bias), through oneDNN."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    """y = x Wᵀ + b with oneDNN GEMMs forward and for the input gradient (the backward of a frozen
    weight); the weight gradient (full fine-tuning, adapters) stays a plain matmul."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        x2 = x.reshape(-1, x.shape[-1])
        out = _mm(x2, weight, bias)
        # The input is kept only when the weight needs its gradient: a frozen Linear saves nothing but W.
        ctx.save_for_backward(x2 if weight.requires_grad else None, weight)
        ctx.has_bias = bias is not None
        ctx.in_shape = x.shape
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x2, weight = ctx.saved_tensors
        g2 = grad.reshape(-1, grad.shape[-1])
        gx = _mm(g2, weight.t()).reshape(ctx.in_shape) if ctx.needs_input_grad[0] else None
        gw = g2.t() @ x2 if ctx.needs_input_grad[1] else None
        gb = g2.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """`F.linear`, through oneDNN for fp32 CPU tensors outside autocast (autocast keeps its own casts)."""
    if (
        x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and x.dim() >= 2
        and not torch.is_autocast_enabled("cpu")
    ):
        return _OneDNNLinear.apply(x, weight, bias)
    return F.linear(x, weight, bias)


def _onednn_forward(self: nn.Linear, x: Tensor) -> Tensor:
    return linear(x, self.weight, self.bias)


def use_onednn_linear(module: nn.Module) -> int:
    """Route every `nn.Linear` in `module` through `linear`; returns how many were routed.

    Per instance, so state dicts, peft wrappers (which call their base layer) and block checkpointing
    (which re-runs the same forward) are unaffected."""
    n = 0
    for m in module.modules():
        if type(m) is nn.Linear:  # exact type: subclasses may have their own forward
            m.forward = types.MethodType(_onednn_forward, m)  # type: ignore[method-assign]  # per instance, on purpose
            n += 1
    return n


def apply_runtime(model: nn.Module, convs: list[nn.Module], runtime: DictConfig) -> None:
    """Apply `runtime.cpu_linear` to the whole model and `runtime.channels_last` to `convs` (the
    trainable convolution stacks; the backbone's patch embedding keeps its layout)."""
    mode = runtime.cpu_linear
    if mode not in CPU_LINEAR:
        raise ConfigError(f"runtime.cpu_linear={mode}: expected one of {', '.join(CPU_LINEAR)}")
    if mode == "onednn" and onednn_available():
        use_onednn_linear(model)
    if runtime.channels_last:
        for m in convs:
            m.to(memory_format=torch.channels_last)
