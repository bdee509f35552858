"""The model configs (`configs/model/*.yaml`) as a catalogue: load one, list all, describe one.

`densebench models`, `densebench doctor` and the tests read models through here, so a config is
read the same way everywhere; `densebench run` gets the same YAML through Hydra.
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from densebench.backbones import Backbone, build_backbone
from densebench.backbones.weights import locate_local
from densebench.config import config_dir, load_yaml, merge
from densebench.errors import ConfigError


def model_names() -> list[str]:
    """Built-in and user (`--config-dir`) model configs."""
    from densebench.config import group_options

    return sorted(group_options("model"))


def load_model_config(name: str, overrides: list[str] | None = None) -> DictConfig:
    """The config of model `name` (a user folder's file wins), with `key=value` overrides (keys relative to `model.`)."""
    from densebench.config import find_option

    path = find_option("model", name)
    if path is None:
        raise ConfigError(f"unknown model '{name}'; known: {', '.join(model_names())} (configs/model/ or --config-dir)")
    cfg = merge(load_yaml(config_dir() / "model_base.yaml"), load_yaml(path))  # as config.yaml's defaults compose it
    if overrides:
        cfg = merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    return cfg


def build_on_meta(cfg: DictConfig) -> Backbone:
    """The configured architecture with no weights and no memory (parameters on the meta device)."""
    random = merge(cfg, {"pretrained": False, "weights": None, "layers": None})
    with torch.device("meta"):
        return build_backbone(random)


def describe(cfg: DictConfig) -> dict[str, Any]:
    """What `densebench models` shows for one model; sizes come from the full-size build, not the config."""
    full = merge(cfg, {"variant": "full"})
    backbone = build_on_meta(full)
    local = locate_local(cfg)
    return {
        "name": cfg.name,
        "display_name": cfg.get("display_name") or cfg.name,
        "published_key": cfg.get("published_key"),
        "family": cfg.family,
        "params": backbone.num_params(),
        "published_params": cfg.get("published_params"),
        "embed_dim": backbone.embed_dim,
        "patch_size": backbone.patch_size,
        "prefix_tokens": backbone.num_prefix_tokens,
        "blocks": backbone.num_blocks,
        "default_input_size": cfg.get("default_input_size"),
        "fixed_input_size": cfg.get("fixed_input_size"),
        "licence": cfg.get("licence"),
        "gated": bool(cfg.gated),
        "hub_repo": (cfg.get("hub") or {}).get("repo_id"),
        "weights_local": None if local is None else {"where": local[0], "path": str(local[1])},
    }
