"""The CNN adapter's branch: exact 1/2, 1/4, 1/8 skips for any size, every parameter used."""

from __future__ import annotations

import math

import pytest
import torch

from densebench.adapters import build_adapter
from densebench.adapters.strategies.cnn import ResNetV2Branch
from densebench.backbones import build_backbone
from densebench.errors import ConfigError

from .support import make_cfg


@pytest.mark.parametrize(("height", "width"), [(40, 56), (42, 70), (48, 32), (37, 51)])
def test_skips_are_ceil_half_quarter_eighth_of_the_input(height, width):
    branch = ResNetV2Branch(0.5, [1, 1])
    skips = branch(torch.randn(1, 3, height, width))
    assert [tuple(s.shape[-2:]) for s in skips] == [(math.ceil(height / f), math.ceil(width / f)) for f in (8, 4, 2)]


@pytest.mark.parametrize(
    ("width_factor", "channels"), [(1, (512, 256, 64)), (0.5, (256, 128, 32)), (2, (1024, 512, 128))]
)
def test_skip_channels_scale_with_the_width_factor(width_factor, channels):
    branch = ResNetV2Branch(width_factor, [1, 1])
    assert branch.channels == channels
    assert tuple(s.shape[1] for s in branch(torch.randn(1, 3, 16, 16))) == channels


def test_default_config_gives_64_256_512_channel_skips_to_the_decoder():
    cfg = make_cfg("demo_vit", "cnn", small=False)
    adapter = build_adapter(build_backbone(cfg.model), cfg.adapter)
    assert adapter.skip_channels == (512, 256, 64)
    assert [len(s.blocks) for s in adapter.branch.stages] == [3, 4]


def test_every_branch_parameter_gets_a_gradient():
    # The paper's branch also computed a 1/16 stage whose output was discarded: ~10 M dead parameters.
    branch = ResNetV2Branch(0.5, [2, 2])
    sum(s.mean() for s in branch(torch.randn(2, 3, 24, 40))).backward()
    dead = [n for n, p in branch.named_parameters() if p.grad is None or not p.grad.any()]
    assert not dead


def test_branch_uses_weight_standardised_convs_and_group_norm_without_running_stats():
    from timm.layers import StdConv2d

    branch = ResNetV2Branch(0.5, [1, 1])
    convs = [m for m in branch.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(isinstance(m, StdConv2d) for m in convs)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in branch.modules())
    assert list(branch.buffers()) == []


@pytest.mark.parametrize(("width_factor", "depths"), [(0.25, [3, 4]), (1, [3]), (1, [3, 0])])
def test_bad_width_or_depths_is_a_config_error(width_factor, depths):
    with pytest.raises(ConfigError, match="adapter.width_factor"):
        ResNetV2Branch(width_factor, depths)
