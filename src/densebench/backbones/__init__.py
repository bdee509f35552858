"""Backbones: one door, `build_backbone(cfg)`, over a registry of architecture families.

A model config (`configs/model/<name>.yaml`) names its `family` and gives the family's keyword
arguments under `arch`; `variant=tiny` merges the config's `tiny` overrides for toy-size tests.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig

from densebench.backbones.base import Backbone, pad_to_multiple
from densebench.backbones.weights import load_strict, read_state_dict, resolve_weights, select_checkpoint_keys
from densebench.config import to_dict
from densebench.errors import ConfigError
from densebench.registry import Registry

BackboneBuilder = Callable[[DictConfig, dict[str, Any]], Backbone]
BACKBONES: Registry[BackboneBuilder] = Registry("backbone family", "densebench.backbones.families")

__all__ = ["BACKBONES", "Backbone", "arch_kwargs", "build_backbone", "pad_to_multiple"]


def arch_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """The family's constructor kwargs for the configured variant."""
    arch = to_dict(cfg.get("arch") or {})
    variant = cfg.variant
    if variant == "tiny":
        arch.update(to_dict(cfg.get("tiny") or {}))
    elif variant != "full":
        raise ConfigError(f"model.variant={variant} is not known; use full or tiny")
    return arch


def build_backbone(cfg: DictConfig) -> Backbone:
    """Build the configured backbone and, if `cfg.pretrained`, load its original checkpoint strictly.

    The checkpoint goes through three declared steps: keep the image trunk (`checkpoint_prefix`,
    `checkpoint_ignore`), map the release's key layout onto the module (`convert_checkpoint`), load
    every tensor or fail naming what does not match.
    """
    builder = BACKBONES.get(cfg.family)
    path = None
    if cfg.pretrained:  # find the weights before spending time and memory on the architecture
        if cfg.variant == "tiny" and not cfg.weights:
            raise ConfigError(
                "model.variant=tiny has no published weights; add model.pretrained=false (or model.weights=PATH)"
            )
        path = resolve_weights(cfg)
    backbone = builder(cfg, arch_kwargs(cfg))
    backbone.model_name = str(cfg.name)
    if cfg.layers is not None:
        backbone.layers = list(cfg.layers)
        backbone.selected_blocks(backbone.num_blocks)  # fail on a bad index now, not mid-run
    if path is not None:
        state = backbone.convert_checkpoint(select_checkpoint_keys(read_state_dict(path), cfg))
        load_strict(backbone.weights_module, state, f"model '{cfg.name}' weights {path}")
    backbone.origin = {
        "family": str(cfg.family),
        **backbone.origin_record(),
        "weights_file": None if path is None else str(path),
        "weights_sha256": None if path is None else file_sha256(path),
    }
    return backbone


def file_sha256(path: Path) -> str:
    """The weights file's SHA-256 (for metrics.json: which exact checkpoint a result came from)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
