"""`frozen`: the backbone is a fixed feature extractor; only the decoder trains."""

from __future__ import annotations

from collections.abc import Callable

import torch
from omegaconf import DictConfig
from torch import Tensor

from densebench.adapters import ADAPTERS
from densebench.adapters.base import Adapter, Features
from densebench.backbones.base import Backbone


def freeze(module: torch.nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


class FrozenBackboneMixin(Adapter):
    """Keeps the backbone in eval mode and runs it without building an autograd graph.

    Its output is a function of the input alone, so the engine may hand in a `memo`
    (engine/features.py) that answers repeated inputs (validation windows) from a store.
    """

    reuses_features = True
    memo: Callable[[Tensor, Callable[[Tensor], Tensor]], Tensor] | None = None

    def train(self, mode: bool = True) -> "FrozenBackboneMixin":
        super().train(mode)
        self.backbone.eval()
        return self

    def backbone_maps(self, x: Tensor) -> list[Tensor]:
        with torch.no_grad():
            return self.backbone(x)

    def _reused(self, x: Tensor, compute: Callable[[Tensor], Tensor]) -> Tensor:
        return compute(x) if self.memo is None else self.memo(x, compute)

    def last_map(self, x: Tensor) -> Tensor:
        """The backbone's last token map (B, D, h, w), reused where the memo holds it."""
        return self._reused(x, lambda t: self.backbone_maps(t)[-1])

    def last_tokens(self, x: Tensor) -> Tensor:
        """The backbone's last full token sequence (B, N, D) of a padded batch, reused where the memo holds it."""

        def compute(t: Tensor) -> Tensor:
            with torch.no_grad():
                return self.backbone.forward_tokens(t)[-1]

        return self._reused(x, compute)

    def forward(self, x: Tensor) -> Features:
        return Features(map=self.last_map(x))


@ADAPTERS.register("frozen")
class Frozen(FrozenBackboneMixin):
    def __init__(self, backbone: Backbone, cfg: DictConfig) -> None:
        super().__init__(backbone, cfg)
        freeze(self.backbone)
