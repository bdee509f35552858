"""The adapter seam: how a backbone is adapted and what of it trains.

An adapter owns the backbone and turns a (padded) image batch into `Features` for the decoder:
a token map plus optional higher-resolution skip features. It decides which parameters train
and which belong to it (LoRA matrices, a CNN branch, extra blocks), so the engine never needs to
know which strategy it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from omegaconf import DictConfig
from torch import Tensor, nn

from densebench.backbones.base import Backbone


@dataclass
class Features:
    """Decoder input: the token map (B, D, h, w) and skips ordered coarse → fine (e.g. 1/8, 1/4, 1/2)."""

    map: Tensor
    skips: list[Tensor] = field(default_factory=list)


class Adapter(nn.Module):
    """Base class. Subclasses set trainability in `__init__` and may override `forward`."""

    #: channels of each skip feature, coarse → fine, for sizing the decoder.
    skip_channels: tuple[int, ...] = ()

    def __init__(self, backbone: Backbone, cfg: DictConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.cfg = cfg

    @property
    def embed_dim(self) -> int:
        return self.backbone.embed_dim

    def backbone_maps(self, x: Tensor) -> list[Tensor]:
        return self.backbone(x)

    def forward(self, x: Tensor) -> Features:
        return Features(map=self.backbone_maps(x)[-1])

    def own_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Parameters the adapter adds, names relative to this module: by default every parameter
        outside the backbone (none for frozen/full); strategies that inject into the backbone extend it."""
        return ((n, p) for n, p in self.named_parameters() if not n.startswith("backbone."))

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters split into `backbone` (original weights) and `adapter` (added ones)."""
        own = {id(p) for _, p in self.own_parameters()}
        groups: dict[str, list[nn.Parameter]] = {"backbone": [], "adapter": []}
        for p in self.parameters():
            if p.requires_grad:
                groups["adapter" if id(p) in own else "backbone"].append(p)
        return groups

    def lr_multipliers(self) -> dict[int, float]:
        """Per-parameter learning-rate multipliers, keyed by `id(param)`, for strategies that need them
        (layer-wise decay); the engine uses `backbone_lr_mult` (backbone) or 1 (the rest) for the others."""
        return {}
