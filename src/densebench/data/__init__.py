"""Datasets (`dataset=` config group): release-format sources behind one registry and one door."""

from __future__ import annotations

from typing import Callable

from omegaconf import DictConfig

from densebench.data.base import IGNORE_INDEX, Record, Sample, SegmentationSource
from densebench.registry import Registry

SOURCES: Registry[Callable[[DictConfig], SegmentationSource]] = Registry("dataset format", "densebench.data.formats")

__all__ = ["IGNORE_INDEX", "SOURCES", "Record", "Sample", "SegmentationSource", "build_source"]


def build_source(cfg: DictConfig) -> SegmentationSource:
    return SOURCES.get(cfg.format)(cfg)
