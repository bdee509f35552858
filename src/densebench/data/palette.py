"""Display colours per class, shared by galleries, exports and predictions."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig


def palette(cfg: DictConfig, n: int) -> np.ndarray:
    """Display colours per class: the config's `colors`, else a fixed pseudo-random palette (class 0 black)."""
    if cfg.get("colors"):
        colours = np.asarray(cfg.colors, np.uint8)
        if len(colours) >= n:
            return colours
    colours = np.random.default_rng(0).integers(40, 256, size=(max(n, 1), 3)).astype(np.uint8)
    colours[0] = 0
    return colours
