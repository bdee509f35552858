"""What the family modules share: a library model held as `self.model`, and LoRA target patterns.

(The leading underscore keeps the registry from importing this as a family.)
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig
from torch import nn

from densebench.backbones.base import Backbone


def lora_patterns(blocks: str, attn: str, mlp: str) -> dict[str, str]:
    """Backbone.lora_targets from regexes for the block path and the attention / MLP projections in a block.

    A block holds only attention and MLP linears, so `all_linear` is the same set as `attn_mlp`.
    """
    both = rf"{blocks}\.({attn}|{mlp})"
    return {"attn": rf"{blocks}\.{attn}", "attn_mlp": both, "all_linear": both}


class WrappedModel(Backbone):
    """A timm / transformers model as `self.model`: the original checkpoint loads into it as it is."""

    model: Any  # the library's model (timm, transformers): its attributes are typed there, not as nn.Module's

    def _describe(
        self, cfg: DictConfig, patch_size: int, embed_dim: int, num_prefix_tokens: int, num_blocks: int
    ) -> None:
        """Record the geometry read from the built model and the authors' normalisation from the config."""
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.num_prefix_tokens = num_prefix_tokens
        self.num_blocks = num_blocks
        self.mean = tuple(cfg.mean)
        self.std = tuple(cfg.std)
        self._cfg = cfg

    @property
    def weights_module(self) -> nn.Module:
        return self.model
