"""timm VisionTransformer family: UNI, UNI2-h, Virchow(2), CONCH v1/v1.5 trunks, GigaPath, H-optimus,
Kaiko, Lunit, PathOrchestra and `demo_vit`.

Every model that is "a timm ViT with these kwargs" is data in its config (`arch:` holds the
`VisionTransformer` kwargs), not a class here. The checkpoints of these models are flat timm state
dicts, so the only conversion is a clear error when the position grid differs from the config's.
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
from densebench.backbones.families._wrapped import WrappedModel, lora_patterns
from densebench.backbones.weights import check_position_grid
from densebench.errors import ConfigError

# Keyword values that cannot live in YAML as objects: configs name them by string.
_LAYER_NAMES = {"SwiGLUPacked": timm.layers.SwiGLUPacked, "SiLU": nn.SiLU, "GELU": nn.GELU}


def _resolve_layers(kwargs: dict[str, Any]) -> dict[str, Any]:
    out = dict(kwargs)
    for key in ("mlp_layer", "act_layer"):
        if isinstance(out.get(key), str):
            if out[key] not in _LAYER_NAMES:
                raise ConfigError(f"model.arch.{key}={out[key]} is not known; use one of {', '.join(_LAYER_NAMES)}")
            out[key] = _LAYER_NAMES[out[key]]
    return out


class TimmTokens(WrappedModel):
    """Shared by timm-built trunks (`VisionTransformer`, `Eva`): tokens after the final norm, per layer."""

    def _describe_timm(self, cfg: DictConfig) -> None:
        m = self.model
        self._describe(cfg, m.patch_embed.patch_size[0], m.embed_dim, m.num_prefix_tokens, len(m.blocks))

    def forward_tokens(self, x: Tensor) -> list[Tensor]:
        if self.layers is None:
            return [self.model.forward_features(x)]
        inter = self.model.forward_intermediates(
            x,
            indices=self.selected_blocks(self.num_blocks),
            norm=True,
            output_fmt="NLC",
            intermediates_only=True,
            return_prefix_tokens=True,
        )
        return [patches if prefix is None else torch.cat([prefix, patches], dim=1) for patches, prefix in inter]

    def check_pos_embed(self, file_pos: Tensor) -> None:
        """Fail with the size to configure when the checkpoint's position grid is not the model's."""
        prefix = 0 if self.model.no_embed_class else self.num_prefix_tokens
        check_position_grid(
            self._cfg,
            "pos_embed",
            file_pos.shape[-2] - prefix,
            self.model.pos_embed.shape[-2] - prefix,
            self.patch_size,
            "img_size",
        )


class TimmViT(TimmTokens):
    """A timm `VisionTransformer` built from the config's kwargs, with dynamic image size."""

    # Module paths relative to this Backbone; peft full-matches these regexes against module names.
    lora_targets = lora_patterns(r"model\.blocks\.\d+", r"attn\.(qkv|proj)", r"mlp\.(fc1|fc2)")

    def __init__(self, cfg: DictConfig, arch: dict[str, Any]) -> None:
        super().__init__()
        kwargs = _resolve_layers(arch)
        kwargs.update(num_classes=0, dynamic_img_size=True)
        self.model = VisionTransformer(**kwargs)
        self._describe_timm(cfg)

    def convert_checkpoint(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        if "pos_embed" in state_dict:
            self.check_pos_embed(state_dict["pos_embed"])
        return state_dict


@BACKBONES.register("timm_vit")
def build_timm_vit(cfg: DictConfig, arch: dict[str, Any]) -> Backbone:
    return TimmViT(cfg, arch)
