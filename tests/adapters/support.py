"""Test support: every model config × every adapter config, built at tiny size.

Models are read from `configs/model/*.yaml` (tiny variant, random init), so each newly added model
is covered automatically, plus hand-made tiny timm ViTs for what `demo_vit` alone does not
exercise (patch 14 with register tokens and SwiGLU, patch 16 with LayerScale).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

import densebench.model
from densebench.backbones import build_backbone, pad_to_multiple
from densebench.config import compose
from densebench.engine.optim import param_groups
from densebench.model import Segmenter, build_model

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
NUM_CLASSES = 3
#: Not a multiple of 8, 14 or 16, and not square: every model pads and crops.
INPUT_HW = (38, 54)

_TIMM_BASE = {
    "family": "timm_vit",
    "variant": "full",
    "pretrained": False,
    "weights": None,
    "layers": None,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
}
EXTRA_MODELS: dict[str, dict] = {
    "tiny_timm_p14_reg4_swiglu": {
        **_TIMM_BASE,
        "name": "tiny_timm_p14_reg4_swiglu",
        "arch": {
            "img_size": 28,
            "patch_size": 14,
            "embed_dim": 32,
            "depth": 2,
            "num_heads": 2,
            "reg_tokens": 4,
            "no_embed_class": True,
            "init_values": 1e-5,
            "mlp_ratio": 5.33334,
            "mlp_layer": "SwiGLUPacked",
            "act_layer": "SiLU",
        },
    },
    "tiny_timm_p16_ls": {
        **_TIMM_BASE,
        "name": "tiny_timm_p16_ls",
        "arch": {"img_size": 32, "patch_size": 16, "embed_dim": 64, "depth": 3, "num_heads": 2, "init_values": 1e-5},
    },
}


def model_configs() -> dict[str, DictConfig]:
    """Each model config as `densebench run model=<name> model.variant=tiny model.pretrained=false` sees it."""
    configs = {}
    for path in sorted((CONFIGS / "model").glob("*.yaml")):
        overrides = [f"model={path.stem}", "model.variant=tiny", "model.pretrained=false"]
        configs[path.stem] = OmegaConf.create(OmegaConf.to_container(compose(overrides).model, resolve=True))
    configs.update({k: OmegaConf.create(v) for k, v in EXTRA_MODELS.items()})
    return configs


MODELS = model_configs()
STRATEGIES = sorted(p.stem for p in (CONFIGS / "adapter").glob("*.yaml"))
LOW_RANK = ("lora", "dora")
FROZEN_PATHS = ("frozen", "cnn", "transformer")


#: The matrix tests are about adapters, not widths: a narrow decoder and CNN branch keep 100+ builds cheap.
SMALL = {"decoder": {"stem_channels": 64, "channels": [32, 16, 16, 8]}, "cnn": {"width_factor": 0.5}}


def make_cfg(model_name: str, adapter: str, small: bool = True, **adapter_overrides: object) -> DictConfig:
    """The slice of the root config `build_model` reads: model, adapter, decoder (narrowed if `small`), runtime."""
    adapter_cfg = OmegaConf.load(CONFIGS / "adapter" / f"{adapter}.yaml")
    root = OmegaConf.load(CONFIGS / "config.yaml")
    decoder = root.decoder
    if small:
        adapter_cfg.merge_with(SMALL.get(adapter, {}))
        decoder.merge_with(SMALL["decoder"])
    adapter_cfg.merge_with(adapter_overrides)
    # No weight decay: Adam's L2 term would move parameters that got no gradient.
    train = {"lr": 1e-3, "weight_decay": 0.0}
    return OmegaConf.create(
        {
            "model": MODELS[model_name],
            "adapter": adapter_cfg,
            "decoder": decoder,
            "train": train,
            "runtime": root.runtime,
        }
    )


def backbone_output(model: Segmenter, x: Tensor) -> Tensor:
    """What the (possibly LoRA-injected) backbone computes, in eval mode and float64: at random init
    LayerScale (1e-5) shrinks one step's LoRA update below float32 resolution of the residual stream."""
    backbone = copy.deepcopy(model.adapter.backbone).double().eval()
    with torch.no_grad():
        return backbone(pad_to_multiple(x.double(), backbone.patch_size))[-1]


def make_optimizer(model: Segmenter, cfg: DictConfig) -> torch.optim.Optimizer:
    """Adam over the engine's parameter groups (learning-rate multipliers included)."""
    return torch.optim.Adam(param_groups(model, cfg))


@dataclass
class Stepped:
    """A tiny model before and after one optimiser step on a random batch."""

    model: Segmenter
    x: Tensor
    logits_shape: tuple[int, ...]
    before: dict[str, Tensor]
    grads: dict[str, Tensor | None]
    backbone_before: Tensor
    backbone_after: Tensor


def take_one_step(cfg: DictConfig) -> Stepped:
    torch.manual_seed(0)
    model = build_model(cfg, NUM_CLASSES)
    x = torch.randn(2, 3, *INPUT_HW)
    y = torch.randint(0, NUM_CLASSES, (2, *INPUT_HW))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    backbone_before = backbone_output(model, x)
    optimizer = make_optimizer(model, cfg)
    model.train()
    logits = model(x)
    F.cross_entropy(logits, y).backward()
    optimizer.step()
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    return Stepped(model, x, tuple(logits.shape), before, grads, backbone_before, backbone_output(model, x))


def build_fresh(cfg: DictConfig, seed: int) -> Segmenter:
    """A new model whose backbone equals `take_one_step`'s (as loaded pretrained weights would) but whose
    adapter and decoder start from another seed."""

    def pretrained_backbone(model_cfg: DictConfig):  # noqa: ANN202 - mirrors build_backbone
        torch.manual_seed(0)
        backbone = build_backbone(model_cfg)
        torch.manual_seed(seed)
        return backbone

    with mock.patch.object(densebench.model, "build_backbone", pretrained_backbone):
        return build_model(cfg, NUM_CLASSES)
