"""timm VisionTransformer family: UNI, Virchow, H-optimus, GigaPath, Lunit, Kaiko, ... and `demo_vit`.

Every model that is "a timm ViT with these kwargs" is data in its config, not a class here.
"""

from __future__ import annotations

from typing import Any

import timm.layers
import torch
from omegaconf import DictConfig
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from densebench.backbones import BACKBONES
from densebench.backbones.base import Backbone

# Keyword values that cannot live in YAML as objects: configs name them by string.
_LAYER_NAMES = {"SwiGLUPacked": timm.layers.SwiGLUPacked, "SiLU": nn.SiLU, "GELU": nn.GELU}


def _resolve_layers(kwargs: dict[str, Any]) -> dict[str, Any]:
    out = dict(kwargs)
    for key in ("mlp_layer", "act_layer"):
        if isinstance(out.get(key), str):
            out[key] = _LAYER_NAMES[out[key]]
    return out


class TimmViT(Backbone):
    """A timm `VisionTransformer` returning last-layer (or selected) tokens after the final norm."""

    lora_targets = {
        "attn": r"model\.blocks\.\d+\.attn\.(qkv|proj)",
        "attn_mlp": r"model\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(fc1|fc2))",
        "all_linear": r"model\.blocks\.\d+\..*(qkv|proj|fc1|fc2)",
    }

    def __init__(self, cfg: DictConfig, arch: dict[str, Any]) -> None:
        super().__init__()
        kwargs = _resolve_layers(arch)
        kwargs.update(num_classes=0, dynamic_img_size=True)
        self.model = VisionTransformer(**kwargs)
        self.patch_size = self.model.patch_embed.patch_size[0]
        self.embed_dim = self.model.embed_dim
        self.num_prefix_tokens = self.model.num_prefix_tokens
        self.mean = tuple(cfg.mean)
        self.std = tuple(cfg.std)
        self._checkpoint_prefix = cfg.get("checkpoint_prefix") or ""

    @property
    def weights_module(self) -> nn.Module:
        return self.model

    def convert_checkpoint(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        prefix = self._checkpoint_prefix
        if not prefix:
            return state_dict
        return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}

    def forward_tokens(self, x: Tensor) -> list[Tensor]:
        if self.layers is None:
            return [self.model.forward_features(x)]
        inter = self.model.forward_intermediates(
            x, indices=list(self.layers), norm=True, output_fmt="NLC", intermediates_only=True,
            return_prefix_tokens=True,
        )
        return [patches if prefix is None else torch.cat([prefix, patches], dim=1) for patches, prefix in inter]


@BACKBONES.register("timm_vit")
def build_timm_vit(cfg: DictConfig, arch: dict[str, Any]) -> Backbone:
    return TimmViT(cfg, arch)
