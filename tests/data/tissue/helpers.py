"""Shared bits of the gland/tissue tests: where ../shared is, and sources built from the shipped configs."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from densebench.data import build_source
from densebench.data.base import SegmentationSource
from densebench.data.cli import compose

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"


def dataset_cfg(name: str, root: Path | str, *overrides: str) -> DictConfig:
    return compose([f"dataset={name}", f"dataset.root={root}", *overrides]).dataset


def source(name: str, root: Path | str, *overrides: str) -> SegmentationSource:
    return build_source(dataset_cfg(name, root, *overrides))
