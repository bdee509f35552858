"""runtime.cpu_linear (oneDNN Linear layers) and runtime.channels_last keep fp32 results."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from densebench.errors import ConfigError
from densebench.fastpath import linear, onednn_available, use_onednn_linear
from densebench.model import build_model

pytestmark = pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN")


def _pair(requires_weight_grad: bool, bias: bool):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 16, dtype=torch.float64).float()[:, ::1, :].transpose(0, 1)  # non-contiguous
    w = torch.randn(24, 16, requires_grad=requires_weight_grad)
    b = torch.randn(24, requires_grad=requires_weight_grad) if bias else None
    return x.requires_grad_(), w, b


@pytest.mark.parametrize("bias", [True, False])
def test_onednn_linear_matches_f_linear_forward_and_every_gradient(bias):
    x, w, b = _pair(True, bias)
    x2, w2 = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    b2 = b.detach().clone().requires_grad_() if bias else None
    g = torch.randn(5, 3, 24)
    ours, ref = linear(x, w, b), F.linear(x2, w2, b2)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    ours.backward(g)
    ref.backward(g)
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w.grad, w2.grad, rtol=1e-5, atol=1e-5)
    if bias:
        torch.testing.assert_close(b.grad, b2.grad, rtol=1e-5, atol=1e-5)


def test_a_frozen_weight_gets_no_gradient_but_its_input_does():
    x, w, b = _pair(False, True)
    linear(x, w, b).sum().backward()
    assert w.grad is None and x.grad is not None
    torch.testing.assert_close(x.grad, torch.ones(5, 3, 24) @ w, rtol=1e-5, atol=1e-5)


def test_autocast_keeps_its_own_casts():
    x, w, b = _pair(False, True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert linear(x, w, b).dtype == torch.bfloat16


def test_routing_changes_neither_outputs_nor_state_dict_and_skips_subclasses():
    torch.manual_seed(0)

    class OwnLinear(nn.Linear):
        pass

    net = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4), OwnLinear(4, 4))
    x = torch.randn(6, 8)
    before, keys = net(x), list(net.state_dict())
    assert use_onednn_linear(net) == 2
    torch.testing.assert_close(net(x), before, rtol=1e-5, atol=1e-5)
    assert list(net.state_dict()) == keys
    assert "forward" in vars(net[0]) and "forward" not in vars(net[3])


def _model(compose_cfg, *overrides: str):
    cfg = compose_cfg(["model.variant=tiny", "adapter=cnn", *overrides])
    torch.manual_seed(0)
    return build_model(cfg, 3).eval()


def test_fast_and_native_runtime_give_the_same_logits(compose_cfg):
    fast = _model(compose_cfg)
    native = _model(compose_cfg, "runtime.cpu_linear=native", "runtime.channels_last=false")
    x = torch.randn(2, 3, 40, 56)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), native(x), rtol=1e-4, atol=1e-4)


def test_channels_last_applies_to_decoder_and_adapter_branch_not_the_backbone(compose_cfg):
    model = _model(compose_cfg)
    cl = torch.channels_last
    assert model.decoder.stem[0].weight.is_contiguous(memory_format=cl)
    branch_convs = [m for n, m in model.adapter.named_modules() if isinstance(m, nn.Conv2d) and "backbone" not in n]
    assert branch_convs and all(m.weight.is_contiguous(memory_format=cl) for m in branch_convs)
    assert not model.backbone.model.patch_embed.proj.weight.is_contiguous(memory_format=cl)
    plain = _model(compose_cfg, "runtime.channels_last=false")
    assert not plain.decoder.stem[0].weight.is_contiguous(memory_format=cl)


def test_unknown_cpu_linear_is_one_config_error(compose_cfg):
    with pytest.raises(ConfigError, match=r"runtime.cpu_linear=blas is not known: must be one of onednn, native"):
        _model(compose_cfg, "runtime.cpu_linear=blas")


def test_runtime_options_are_not_part_of_the_run_identity():
    from omegaconf import OmegaConf

    from densebench.runs.rundir import run_dir

    cfg = OmegaConf.create(
        {"output_dir": "o", "seed": 0, "dataset": {"name": "d"}, "model": {"name": "m"}, "adapter": {"name": "a"}}
    )
    assert run_dir(cfg, ["runtime.cpu_linear=native", "runtime.channels_last=false"]).as_posix() == "o/d/m/a/seed0"
