"""`cnn`: the frozen backbone plus a trainable ResNetV2-style CNN branch run in parallel on the image.

The branch gives the decoder high-resolution skips at 1/2, 1/4 and 1/8 (64/256/512 channels at
width factor 1), which a patch-8/14/16 token map lacks. Built from timm's ResNetV2 parts:
weight-standardised convs, GroupNorm(32), pre-activation bottlenecks. Unlike the paper's branch it
stops at 1/8: the paper also computed a 1/16 stage (~10 M parameters) and discarded its output.
Every downsampling step rounds up (stride 2, "same" padding, max-pool padding 1), so for any input
size the skips are exactly ceil(H/2), ceil(H/4), ceil(H/8) — non-square and patch-14 grids included.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from omegaconf import DictConfig
from timm.layers import GroupNormAct, StdConv2d
from timm.models.resnetv2 import PreActBottleneck, ResNetStage
from torch import Tensor, nn

from densebench.adapters import ADAPTERS
from densebench.adapters.base import Features
from densebench.adapters.strategies.frozen import FrozenBackboneMixin, freeze
from densebench.backbones.base import Backbone
from densebench.errors import ConfigError

GROUPS = 32


class ResNetV2Branch(nn.Module):
    """Root conv (→ 1/2) → max-pool → pre-activation stage (→ 1/4) → strided stage (→ 1/8).

    Pre-activation stages output un-normalised residual sums, so each skip gets its own GN+ReLU
    (as ResNetV2 applies a final norm); the next stage still consumes the raw sum.
    """

    def __init__(self, width_factor: float, depths: Sequence[int]) -> None:
        super().__init__()
        width = 64 * width_factor
        if width != int(width) or int(width) % GROUPS or len(depths) != 2 or min(depths) < 1:
            raise ConfigError(
                f"adapter.width_factor={width_factor}, adapter.depths={list(depths)}: need 64*width_factor a "
                f"multiple of {GROUPS} (e.g. 0.5, 1, 2) and two positive stage depths (default [3, 4])"
            )
        width = int(width)
        norm = partial(GroupNormAct, num_groups=GROUPS, eps=1e-6)
        stage = partial(ResNetStage, dilation=1, block_fn=PreActBottleneck, conv_layer=StdConv2d, norm_layer=norm)
        self.root = nn.Sequential(StdConv2d(3, width, 7, stride=2), norm(width))
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.stages = nn.ModuleList(
            [stage(width, 4 * width, stride=1, depth=depths[0]), stage(4 * width, 8 * width, stride=2, depth=depths[1])]
        )
        self.skip_norms = nn.ModuleList([norm(4 * width), norm(8 * width)])
        #: skip channels coarse → fine (1/8, 1/4, 1/2), the order the decoder consumes them.
        self.channels = (8 * width, 4 * width, width)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.root(x)
        skips = [x]
        x = self.pool(x)
        for stage, norm in zip(self.stages, self.skip_norms):
            x = stage(x)
            skips.append(norm(x))
        return skips[::-1]


@ADAPTERS.register("cnn")
class CNNAdapter(FrozenBackboneMixin):
    def __init__(self, backbone: Backbone, cfg: DictConfig) -> None:
        super().__init__(backbone, cfg)
        freeze(self.backbone)
        self.branch = ResNetV2Branch(cfg.width_factor, list(cfg.depths))
        self.skip_channels = self.branch.channels

    def forward(self, x: Tensor) -> Features:
        return Features(map=self.last_map(x), skips=self.branch(x))
