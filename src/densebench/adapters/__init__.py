"""Adaptation strategies (`adapter=` config group), one registry, one door: `build_adapter`."""

from __future__ import annotations

from typing import Callable

from omegaconf import DictConfig

from densebench.adapters.base import Adapter, Features
from densebench.backbones.base import Backbone
from densebench.registry import Registry

ADAPTERS: Registry[Callable[[Backbone, DictConfig], Adapter]] = Registry("adapter", "densebench.adapters.strategies")

__all__ = ["ADAPTERS", "Adapter", "Features", "build_adapter"]


def build_adapter(backbone: Backbone, cfg: DictConfig) -> Adapter:
    return ADAPTERS.get(cfg.name)(backbone, cfg)
