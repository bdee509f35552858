"""`frozen`: the backbone is a fixed feature extractor; only the decoder trains."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import Tensor

from densebench.adapters import ADAPTERS
from densebench.adapters.base import Adapter
from densebench.backbones.base import Backbone


def freeze(module: torch.nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


class FrozenBackboneMixin(Adapter):
    """Keeps the backbone in eval mode and runs it without building an autograd graph."""

    def train(self, mode: bool = True) -> "FrozenBackboneMixin":
        super().train(mode)
        self.backbone.eval()
        return self

    def backbone_maps(self, x: Tensor) -> list[Tensor]:
        with torch.no_grad():
            return self.backbone(x)


@ADAPTERS.register("frozen")
class Frozen(FrozenBackboneMixin):
    def __init__(self, backbone: Backbone, cfg: DictConfig) -> None:
        super().__init__(backbone, cfg)
        freeze(self.backbone)
