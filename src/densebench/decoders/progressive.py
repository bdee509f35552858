"""The paper's progressive-upsampling decoder (a skip-less TransUNet "CUP"), sized from the backbone.

conv 3x3 D→512 at token resolution, then four blocks of bilinear upsampling + two conv-BN-ReLU
(256/128/64/16 channels) and a 3x3 head. Blocks 1-3 double the resolution (or match a skip's size);
the last block goes straight to the requested output size, so patch 8, 14 and 16 all land exactly
on the label grid without a per-model scale table.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UpBlock(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(cin + cskip, cout)
        self.conv2 = ConvBNReLU(cout, cout)

    def forward(self, x: Tensor, size: tuple[int, int], skip: Tensor | None = None) -> Tensor:
        # align_corners=True matches the paper's nn.UpsamplingBilinear2d.
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class ProgressiveDecoder(nn.Module):
    """Token map (+ optional skips, coarse → fine) → logits at `out_size`."""

    def __init__(
        self,
        embed_dim: int,
        num_classes: int,
        channels: Sequence[int] = (256, 128, 64, 16),
        stem_channels: int = 512,
        skip_channels: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if len(skip_channels) >= len(channels):
            raise ValueError("the last decoder block cannot take a skip: it goes to the output size")
        self.stem = ConvBNReLU(embed_dim, stem_channels)
        skips = list(skip_channels) + [0] * (len(channels) - len(skip_channels))
        cins = [stem_channels, *channels[:-1]]
        self.blocks = nn.ModuleList(UpBlock(ci, cs, co) for ci, cs, co in zip(cins, skips, channels))
        self.head = nn.Conv2d(channels[-1], num_classes, 3, padding=1)

    def forward(self, x: Tensor, out_size: tuple[int, int], skips: Sequence[Tensor] = ()) -> Tensor:
        x = self.stem(x)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            skip = skips[i] if i < len(skips) else None
            if i == last:
                size = out_size
            elif skip is not None:
                size = (int(skip.shape[-2]), int(skip.shape[-1]))
            else:
                size = (x.shape[-2] * 2, x.shape[-1] * 2)
            x = block(x, size, skip)
        return self.head(x)
