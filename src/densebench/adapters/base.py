"""The adapter seam: how a backbone is adapted and what of it trains.

An adapter owns the backbone and turns a (padded) image batch into `Features` for the decoder:
a token map plus optional higher-resolution skip features. It decides which parameters train
and which belong to it (LoRA matrices, a CNN branch, extra blocks), so the engine never needs to
know which strategy it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

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
    #: False when no gradient may flow into the backbone (its forward then runs without a graph).
    backbone_trainable: bool = False

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

    def optimizer_groups(self) -> list[dict[str, Any]]:
        """Trainable parameters as optimiser param groups, each with a `lr_mult`; the engine sets
        `lr = base_lr * lr_mult` per group (and may split each group further, e.g. for weight decay).

        Default: added parameters at 1, trainable backbone weights at `backbone_lr_mult` (if configured).
        """
        groups = self.param_groups()
        out = [
            {"name": "adapter", "params": groups["adapter"], "lr_mult": 1.0},
            {"name": "backbone", "params": groups["backbone"], "lr_mult": float(self.cfg.get("backbone_lr_mult", 1.0))},
        ]
        return [g for g in out if g["params"]]
