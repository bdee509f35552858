"""Display colours per class and the one overlay renderer, shared by galleries, exports and predictions."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

ALPHA = 0.5  # weight of the class colour over the image
IGNORED_SHADE = 0.3  # ignored pixels are darkened to this fraction
BORDER = (20, 20, 20)  # colour of the lines between regions


def palette(cfg: DictConfig, n: int) -> np.ndarray:
    """Display colours per class: the config's `colors`, else a fixed pseudo-random palette (class 0 black)."""
    if cfg.get("colors"):
        colours = np.asarray(cfg.colors, np.uint8)
        if len(colours) >= n:
            return colours
    colours = np.random.default_rng(0).integers(40, 256, size=(max(n, 1), 3)).astype(np.uint8)
    colours[0] = 0
    return colours


def colourize(image: np.ndarray, labels: np.ndarray, colours: np.ndarray, ignore_index: int) -> np.ndarray:
    """Classes blended with their colour over the image, region borders drawn dark, ignored pixels darkened.

    A class coloured black (the configs' background convention) is left untinted; the borders keep
    regions readable even when a dataset's colours resemble the stain.
    """
    out = image.astype(np.float32)
    known = labels != ignore_index
    safe = np.where(known, labels, 0)
    tinted = known & colours[safe].any(-1)
    out[tinted] = (1 - ALPHA) * out[tinted] + ALPHA * colours[safe][tinted].astype(np.float32)
    out[~known] *= IGNORED_SHADE
    border = np.zeros(labels.shape, bool)
    border[:-1] |= labels[:-1] != labels[1:]
    border[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    out[border] = BORDER
    return out.clip(0, 255).astype(np.uint8)
