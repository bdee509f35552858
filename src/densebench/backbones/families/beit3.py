"""BEiT-3 image path (MUSK), built from timm's EVA blocks and loaded from the official `beit3.*` checkpoint.

For an image alone, BEiT-3 (torchscale) runs every multiway module on its vision branch `A`, so
its encoder is a pre-norm ViT with two sub-LayerNorms: one on the attention output before the out
projection, one on the MLP hidden state before `fc2`. timm's `Eva` with `qkv_fused=False,
scale_attn_inner=True, scale_mlp=True` is exactly that block. Two details differ from EVA and are
restored here: BEiT-3 has a key-projection bias (EVA omits it), and its learned positions start at
row 2 (fairseq's padding offset), so rows 0-1 of `embed_positions.A` are never used.

torchscale itself (PyPI 0.3.0) is not used: its metadata pins timm==0.6.13, so it cannot be a
dependency next to timm 1.x, and it would also build the 369 M-parameter text side.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from omegaconf import DictConfig
from timm.layers import LayerNorm
from timm.models.eva import Eva
from torch import Tensor, nn

from densebench.backbones import BACKBONES
from densebench.backbones.base import Backbone
from densebench.backbones.families._wrapped import lora_patterns
from densebench.backbones.families.timm_vit import TimmTokens
from densebench.backbones.weights import check_position_grid

# fairseq-style learned positions: token t uses row t + POSITION_OFFSET.
POSITION_OFFSET = 2

# BEiT-3 vision-branch key (after `checkpoint_prefix`, branch A) -> timm Eva key.
_RENAMES = [
    (r"^vision_embed\.proj\.", "patch_embed.proj."),
    (r"^vision_embed\.cls_token$", "cls_token"),
    (r"^encoder\.layers\.(\d+)\.self_attn\.(q_proj|k_proj|v_proj)\.A\.", r"blocks.\1.attn.\2."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.out_proj\.A\.", r"blocks.\1.attn.proj."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.inner_attn_ln\.A\.", r"blocks.\1.attn.norm."),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.A\.", r"blocks.\1.norm1."),
    (r"^encoder\.layers\.(\d+)\.ffn\.A\.(fc1|fc2)\.", r"blocks.\1.mlp.\2."),
    (r"^encoder\.layers\.(\d+)\.ffn\.A\.ffn_layernorm\.", r"blocks.\1.mlp.norm."),
    (r"^encoder\.layers\.(\d+)\.final_layer_norm\.A\.", r"blocks.\1.norm2."),
    (r"^encoder\.layer_norm\.A\.", "norm."),
]
_POSITIONS = "encoder.embed_positions.A.weight"


class Beit3Vision(TimmTokens):
    """The BEiT-3 encoder's image path as a timm `Eva`; checkpoint keys are mapped from torchscale's names."""

    lora_targets = lora_patterns(r"model\.blocks\.\d+", r"attn\.(q_proj|k_proj|v_proj|proj)", r"mlp\.(fc1|fc2)")

    def __init__(self, cfg: DictConfig, arch: dict[str, Any]) -> None:
        super().__init__()
        kwargs = dict(arch)
        norm_eps = kwargs.pop("norm_eps")
        self.model = Eva(
            **kwargs,
            qkv_fused=False,
            scale_attn_inner=True,
            scale_mlp=True,
            norm_layer=partial(LayerNorm, eps=norm_eps),
            num_classes=0,
            global_pool="",
            dynamic_img_size=True,
        )
        for block in self.model.blocks:
            attn = block.attn
            attn.k_proj = nn.Linear(attn.k_proj.in_features, attn.k_proj.out_features, bias=True)
        self._describe_timm(cfg)

    def convert_checkpoint(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        for key, value in state_dict.items():
            if key == _POSITIONS:
                self._check_positions(value)
                out["pos_embed"] = value[POSITION_OFFSET:].unsqueeze(0)
                continue
            for pattern, repl in _RENAMES:
                key = re.sub(pattern, repl, key)
            out[key] = value
        return out

    def _check_positions(self, rows: Tensor) -> None:
        own = self.model.pos_embed.shape[1] - 1  # patches (the first row is the class token's)
        check_position_grid(
            self._cfg, _POSITIONS, rows.shape[0] - POSITION_OFFSET - 1, own, self.patch_size, "img_size"
        )


@BACKBONES.register("beit3")
def build_beit3(cfg: DictConfig, arch: dict[str, Any]) -> Backbone:
    return Beit3Vision(cfg, arch)
