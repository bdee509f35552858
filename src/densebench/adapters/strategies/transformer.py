"""`transformer`: trainable pre-LN Transformer blocks on top of the frozen backbone's tokens.

The blocks see the backbone's full token sequence (class and register tokens included), so the
patch tokens can still attend to the global ones; prefix tokens are dropped only afterwards.
Defaults follow the paper's config: 2 timm blocks, width = backbone width, dim/64 heads, MLP ratio 4,
LayerScale 1e-5, stochastic depth rising linearly to 0.1, then a final LayerNorm.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from timm.models.vision_transformer import Block, init_weights_vit_timm
from torch import Tensor, nn

from densebench.adapters import ADAPTERS
from densebench.adapters.base import Features
from densebench.adapters.strategies.frozen import FrozenBackboneMixin, freeze
from densebench.backbones.base import Backbone, pad_to_multiple
from densebench.errors import ConfigError


def default_heads(dim: int) -> int:
    return max(1, dim // 64)


@ADAPTERS.register("transformer")
class TransformerAdapter(FrozenBackboneMixin):
    def __init__(self, backbone: Backbone, cfg: DictConfig) -> None:
        super().__init__(backbone, cfg)
        freeze(self.backbone)
        dim = backbone.embed_dim
        heads = int(cfg.num_heads) if cfg.num_heads is not None else default_heads(dim)
        if cfg.depth < 1 or heads < 1 or dim % heads:
            raise ConfigError(
                f"adapter.depth={cfg.depth}, adapter.num_heads={heads}: need depth >= 1 and heads dividing "
                f"the backbone width {dim}; set adapter.num_heads"
            )
        rates = torch.linspace(0, float(cfg.drop_path_rate), int(cfg.depth), device="cpu").tolist()  # also on meta
        self.blocks = nn.Sequential(
            *(
                Block(
                    dim,
                    heads,
                    mlp_ratio=float(cfg.mlp_ratio),
                    qkv_bias=True,
                    init_values=float(cfg.init_values),
                    drop_path=rate,
                )
                for rate in rates
            )
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)  # as timm's ViT blocks
        self.blocks.apply(init_weights_vit_timm)

    def forward(self, x: Tensor) -> Features:
        x = pad_to_multiple(x, self.backbone.patch_size)
        tokens = self.norm(self.blocks(self.last_tokens(x)))
        return Features(map=self.backbone.tokens_to_map(tokens, self.backbone.grid(*x.shape[-2:])))
