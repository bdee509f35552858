"""`full`: every backbone weight trains (with its own learning-rate multiplier)."""

from __future__ import annotations

from omegaconf import DictConfig

from densebench.adapters import ADAPTERS
from densebench.adapters.base import Adapter
from densebench.backbones.base import Backbone


@ADAPTERS.register("full")
class Full(Adapter):
    backbone_trainable = True

    def __init__(self, backbone: Backbone, cfg: DictConfig) -> None:
        super().__init__(backbone, cfg)
        for p in self.backbone.parameters():
            p.requires_grad_(True)
