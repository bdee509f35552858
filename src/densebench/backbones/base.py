"""The backbone contract every pathology foundation model implements.

A backbone turns an image batch of any size into patch-token maps. Everything the rest of the
pipeline needs to know (patch size, width, prefix tokens, normalisation) is read from the built
module, never from a table keyed by model name.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from densebench.errors import ConfigError


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad (B,C,H,W) on the bottom/right so H and W are multiples of `multiple`.

    Zero after normalisation is the dataset-mean colour, the least surprising fill for a ViT.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph))


class Backbone(nn.Module, ABC):
    """Base class: subclasses implement `forward_tokens` and set the attributes below.

    Attributes:
        patch_size: side of a square patch in pixels.
        embed_dim: width D of the returned token maps.
        num_prefix_tokens: CLS + register tokens ahead of the patch tokens.
        num_blocks: transformer blocks, the range `layers` indexes.
        mean, std: RGB normalisation the model's authors publish.
        layers: indices of blocks whose tokens are returned, each after the final norm (None = last block).
        lora_targets: target-set name → regex over module paths (relative to this module) for peft.
        model_name: the model config's `name`, set by `build_backbone`, for error messages.
        origin: family, origin_record() and the weights file with its SHA-256, set by `build_backbone`.
    """

    patch_size: int
    embed_dim: int
    num_prefix_tokens: int
    num_blocks: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    layers: Sequence[int] | None = None
    lora_targets: dict[str, str] = {}
    model_name: str = "unnamed"
    origin: dict[str, Any] = {}

    @abstractmethod
    def forward_tokens(self, x: Tensor) -> list[Tensor]:
        """Full token sequences (B, prefix + h*w, D) for each selected layer; H, W are multiples of p."""

    @property
    def weights_module(self) -> nn.Module:
        """The module an original checkpoint's state dict loads into (strictly)."""
        return self

    def convert_checkpoint(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Map an original checkpoint's keys onto `weights_module`; identity unless a family overrides it."""
        return state_dict

    def origin_record(self) -> dict[str, Any]:
        """Where the architecture came from beyond the family (a factory, a hub id), for metrics.json."""
        return {}

    def lora_fix(self, target_set: str) -> str:
        """How to correct a LoRA target pattern of this backbone (quoted in the adapter's errors)."""
        return f"fix the lora_targets of {type(self).__name__}"

    def selected_blocks(self, depth: int) -> list[int]:
        """`layers` as block indices in [0, depth); negative ones count from the last block."""
        out = []
        for index in self.layers or ():
            resolved = index + depth if index < 0 else index
            if not 0 <= resolved < depth:
                raise ConfigError(f"model.layers has {index}, but this backbone has {depth} blocks (0..{depth - 1})")
            out.append(resolved)
        return out

    def grid(self, height: int, width: int) -> tuple[int, int]:
        return math.ceil(height / self.patch_size), math.ceil(width / self.patch_size)

    def tokens_to_map(self, tokens: Tensor, grid: tuple[int, int]) -> Tensor:
        """Drop prefix tokens and fold the row-major patch sequence into (B, D, h, w)."""
        patches = tokens[:, self.num_prefix_tokens :]
        b, n, d = patches.shape
        h, w = grid
        if n != h * w:
            raise RuntimeError(f"{type(self).__name__}: {n} patch tokens do not fill a {h}x{w} grid")
        return patches.transpose(1, 2).reshape(b, d, h, w)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Token maps (B, D, ceil(H/p), ceil(W/p)) for each selected layer, for any H, W."""
        grid = self.grid(*x.shape[-2:])
        tokens = self.forward_tokens(pad_to_multiple(x, self.patch_size))
        return [self.tokens_to_map(t, grid) for t in tokens]

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
