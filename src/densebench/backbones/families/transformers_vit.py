"""Hugging Face transformers ViTs: `ViTModel` (Phikon) and DINOv2 (Phikon-v2, Midnight-12k; Hibou-L
with 4 registers via `Dinov2WithRegistersModel`).

`arch:` holds the model's config.json fields. The official checkpoints use transformers-4.x
parameter names, which the pinned transformers (<5) builds, so they load as they are. Files
re-saved by transformers 5.x use renamed keys (and split the DINOv2 SwiGLU input projection);
`convert_checkpoint` maps those back so either layout loads strictly.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from densebench.backbones import BACKBONES
from densebench.backbones.base import Backbone
from densebench.backbones.families._wrapped import WrappedModel, lora_patterns
from densebench.backbones.weights import check_position_grid

# transformers 5.x name -> 4.x name (regex, replacement), verified against 5.24 and 4.57 module trees.
_V5_RENAMES = [
    (r"^layers\.(\d+)\.", r"encoder.layer.\1."),  # ViTModel dropped the `encoder.` level
    (r"^(encoder\.layer\.\d+)\.attention\.q_proj\.", r"\1.attention.attention.query."),
    (r"^(encoder\.layer\.\d+)\.attention\.k_proj\.", r"\1.attention.attention.key."),
    (r"^(encoder\.layer\.\d+)\.attention\.v_proj\.", r"\1.attention.attention.value."),
    (r"^(encoder\.layer\.\d+)\.attention\.o_proj\.", r"\1.attention.output.dense."),
    (r"^(encoder\.layer\.\d+)\.mlp\.down_proj\.", r"\1.mlp.weights_out."),
]
# ViTModel 5.x moved its MLP under `mlp.`; DINOv2 kept `mlp.fc1/fc2` in both versions.
_V5_VIT_MLP = [
    (r"^(encoder\.layer\.\d+)\.mlp\.fc1\.", r"\1.intermediate.dense."),
    (r"^(encoder\.layer\.\d+)\.mlp\.fc2\.", r"\1.output.dense."),
]
# Module paths (relative to the Backbone) of the blocks and of the attention projections in a block.
_LAYERS = r"model\.encoder\.layer\.\d+"
_ATTENTION = r"attention\.(attention\.(query|key|value)|output\.dense)"
_SWIGLU_V5 = re.compile(r"^(encoder\.layer\.\d+)\.mlp\.(gate_proj|up_proj)\.(weight|bias)$")


def from_v5_names(state: dict[str, Tensor], renames: list[tuple[str, str]]) -> dict[str, Tensor]:
    """Map transformers-5.x keys back to 4.x; 4.x keys pass through unchanged.

    5.x splits DINOv2's SwiGLU `weights_in` into `gate_proj` (the SiLU branch, first half) and
    `up_proj` (second half); they are concatenated back in that order.
    """
    out: dict[str, Tensor] = {}
    halves: dict[tuple[str, str], dict[str, Tensor]] = {}
    for key, value in state.items():
        swiglu = _SWIGLU_V5.match(key)
        if swiglu:
            layer, part, kind = swiglu.groups()
            halves.setdefault((layer, kind), {})[part] = value
            continue
        for pattern, repl in renames:
            key = re.sub(pattern, repl, key)
        out[key] = value
    for (layer, kind), parts in halves.items():
        if set(parts) != {"gate_proj", "up_proj"}:
            out.update({f"{layer}.mlp.{p}.{kind}": v for p, v in parts.items()})  # left for the strict check
            continue
        out[f"{layer}.mlp.weights_in.{kind}"] = torch.cat([parts["gate_proj"], parts["up_proj"]], dim=0)
    return out


class TransformersViT(WrappedModel):
    """Shared by the transformers families: tokens of `last_hidden_state` or of selected layers, final norm applied."""

    forward_kwargs: dict[str, Any] = {}
    renames: list[tuple[str, str]] = _V5_RENAMES

    def _describe_hf(self, cfg: DictConfig) -> None:
        c = self.model.config
        registers = getattr(c, "num_register_tokens", 0)
        self._describe(cfg, c.patch_size, c.hidden_size, 1 + registers, c.num_hidden_layers)

    def forward_tokens(self, x: Tensor) -> list[Tensor]:
        if self.layers is None:
            return [self.model(pixel_values=x, **self.forward_kwargs).last_hidden_state]
        out = self.model(pixel_values=x, output_hidden_states=True, **self.forward_kwargs)
        # hidden_states[0] is the embedding output; block i's output is hidden_states[i + 1].
        return [self.model.layernorm(out.hidden_states[i + 1]) for i in self.selected_blocks(self.num_blocks)]

    def convert_checkpoint(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        state = from_v5_names(state_dict, self.renames)
        key = "embeddings.position_embeddings"
        if key in state:  # both hold the class token's row and the patch grid
            own = self.model.embeddings.position_embeddings
            check_position_grid(
                self._cfg, key, state[key].shape[-2] - 1, own.shape[-2] - 1, self.patch_size, "image_size"
            )
        return state


class HFViT(TransformersViT):
    """transformers `ViTModel` without the pooler (Phikon); needs `interpolate_pos_encoding` for other sizes."""

    forward_kwargs = {"interpolate_pos_encoding": True}
    renames = _V5_RENAMES + _V5_VIT_MLP
    lora_targets = lora_patterns(_LAYERS, _ATTENTION, r"(intermediate|output)\.dense")

    def __init__(self, cfg: DictConfig, arch: dict[str, Any]) -> None:
        super().__init__()
        from transformers import ViTConfig, ViTModel

        self.model = ViTModel(ViTConfig(**arch), add_pooling_layer=False)
        self._describe_hf(cfg)


class HFDinov2(TransformersViT):
    """transformers DINOv2; `num_register_tokens > 0` selects `Dinov2WithRegistersModel` (same names + registers)."""

    lora_targets = lora_patterns(_LAYERS, _ATTENTION, r"mlp\.(fc1|fc2|weights_in|weights_out)")

    def __init__(self, cfg: DictConfig, arch: dict[str, Any]) -> None:
        super().__init__()
        from transformers import Dinov2Config, Dinov2Model, Dinov2WithRegistersConfig, Dinov2WithRegistersModel

        if arch.get("num_register_tokens", 0) > 0:
            self.model = Dinov2WithRegistersModel(Dinov2WithRegistersConfig(**arch))
        else:
            self.model = Dinov2Model(Dinov2Config(**{k: v for k, v in arch.items() if k != "num_register_tokens"}))
        self._describe_hf(cfg)


@BACKBONES.register("hf_vit")
def build_hf_vit(cfg: DictConfig, arch: dict[str, Any]) -> Backbone:
    return HFViT(cfg, arch)


@BACKBONES.register("hf_dinov2")
def build_hf_dinov2(cfg: DictConfig, arch: dict[str, Any]) -> Backbone:
    return HFDinov2(cfg, arch)
