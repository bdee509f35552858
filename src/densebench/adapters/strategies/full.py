"""`full`: every backbone weight trains, optionally with layer-wise LR decay and gradient checkpointing.

The paper trains the backbone at the decoder's LR with no decay (`backbone_lr_mult: 1`, `layer_decay: 1`).
Layer-wise decay (BEiT-style) gives block i of L the multiplier `layer_decay ** (L - i)`, the
embeddings `layer_decay ** (L + 1)` and anything after the blocks (final norm) 1, all times
`backbone_lr_mult`; it is exposed through `lr_multipliers()` so the engine stays strategy-agnostic.
"""

from __future__ import annotations

from omegaconf import DictConfig

from densebench.adapters import ADAPTERS
from densebench.adapters.base import Adapter
from densebench.backbones.blocks import checkpoint_blocks, checkpoint_min_tokens, layer_ids
from densebench.backbones.base import Backbone
from densebench.errors import ConfigError


@ADAPTERS.register("full")
class Full(Adapter):
    def __init__(self, backbone: Backbone, cfg: DictConfig) -> None:
        super().__init__(backbone, cfg)
        # Both options are off unless configured (configs/adapter/full.yaml documents them).
        self.layer_decay = float(cfg.layer_decay)
        if not 0.0 < self.layer_decay <= 1.0:
            raise ConfigError(f"adapter.layer_decay={self.layer_decay} must be in (0, 1]; 1 turns decay off")
        for p in self.backbone.parameters():
            p.requires_grad_(True)
        min_tokens = checkpoint_min_tokens(cfg)
        if min_tokens is not None:
            checkpoint_blocks(self.backbone, backbone.model_name, min_tokens)

    def lr_multipliers(self) -> dict[int, float]:
        decay = self.layer_decay
        if decay == 1.0:
            return {}
        base = float(self.cfg.backbone_lr_mult)
        ids, depth = layer_ids(self.backbone, self.backbone.model_name)
        return {
            id(p): base * decay ** (depth + 1 - ids[name])
            for name, p in self.backbone.named_parameters()
            if p.requires_grad
        }
