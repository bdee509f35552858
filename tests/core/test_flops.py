"""FLOP accounting of a training step: the same whichever kernels ran, attention included."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from densebench.bench.flops import count_flops, train_flops_per_image
from densebench.fastpath import linear, onednn_available


@pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN linear kernel")
def test_a_onednn_linear_counts_forward_input_and_weight_gradients():
    x, w = torch.randn(10, 32, requires_grad=True), torch.randn(64, 32, requires_grad=True)
    assert count_flops(lambda: linear(x, w).sum().backward()) == 3 * 2 * 10 * 32 * 64


def test_cpu_flash_attention_is_counted_forward_and_backward():
    q = torch.randn(2, 4, 50, 16, requires_grad=True)
    forward = 4 * 2 * 4 * 50 * 50 * 16  # QKᵀ and PV
    assert count_flops(lambda: F.scaled_dot_product_attention(q, q, q)) == forward
    assert count_flops(lambda: F.scaled_dot_product_attention(q, q, q).sum().backward()) == forward * 7 // 2


def test_train_flops_do_not_depend_on_the_linear_kernel(compose_cfg):
    from densebench.model import build_model

    counts = []
    for path in ("onednn", "native"):
        torch.manual_seed(0)
        model = build_model(compose_cfg(["model.variant=tiny", f"runtime.cpu_linear={path}", "adapter=lora"]), 2)
        counts.append(train_flops_per_image(model, 32, torch.device("cpu")))
        assert all(p.grad is None for p in model.parameters())
    assert counts[0] == counts[1] > 0


def test_train_flops_of_a_single_conv_match_the_formula():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    macs = 8 * 3 * 9 * 16 * 16
    # forward + weight gradient; the input image needs no gradient
    assert train_flops_per_image(conv, 16, torch.device("cpu")) == 2 * 2 * macs
