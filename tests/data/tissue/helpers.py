"""Shared bits of the gland/tissue tests: config composition and instance-map comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from densebench.data import build_source
from densebench.data.base import SegmentationSource
from densebench.data.cli import compose

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"


def dataset_cfg(name: str, root: Path | str, *overrides: str) -> DictConfig:
    return compose([f"dataset={name}", f"dataset.root={root}", *overrides]).dataset


def source(name: str, root: Path | str, *overrides: str) -> SegmentationSource:
    return build_source(dataset_cfg(name, root, *overrides))


def same_instances(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal partitions into instances, whatever the ids (0 = no instance in both)."""
    if a.shape != b.shape or not np.array_equal(a == 0, b == 0):
        return False
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]
