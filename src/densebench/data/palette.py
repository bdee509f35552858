"""Display colours per class and the one overlay renderer, shared by galleries, exports and predictions.

Classes must be told apart at a glance: the default palette is built once, deterministically, by
farthest-point selection in CIELAB (each next colour the one farthest from all chosen), starting
from black for class 0 (the configs' background convention). `min_distance` measures a palette
(CIE76 ΔE; about 2.3 is a just-noticeable difference), and the tests hold every palette to
`MIN_DELTA_E`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from omegaconf import DictConfig

MIN_DELTA_E = 15.0  # the smallest CIE76 distance allowed between two classes' colours (clearly distinct)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0-255, ... × 3) to CIELAB (D65)."""
    c = np.asarray(rgb, np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def min_distance(colours: np.ndarray) -> float:
    """The smallest CIE76 ΔE between any two of the colours (inf for fewer than two)."""
    lab = to_lab(np.asarray(colours)[:, :3])
    if len(lab) < 2:
        return float("inf")
    d = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
    return float(d[np.triu_indices(len(lab), 1)].min())


@lru_cache(maxsize=8)
def default_palette(n: int) -> np.ndarray:
    """n well-separated colours, class 0 black: farthest-point selection in CIELAB over an RGB grid."""
    levels = np.arange(0, 256, 17)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    lab = to_lab(grid)
    chosen = [0]  # black
    nearest = np.linalg.norm(lab - lab[0], axis=-1)
    for _ in range(1, max(n, 1)):
        pick = int(nearest.argmax())
        chosen.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[pick], axis=-1))
    return grid[chosen].astype(np.uint8)


ALPHA = 0.5  # weight of the class colour over the image
IGNORED_SHADE = 0.3  # ignored pixels are darkened to this fraction
BORDER = (20, 20, 20)  # colour of the lines between regions


def palette(cfg: DictConfig, n: int) -> np.ndarray:
    """Display colours per class: the config's `colors`, else the default palette (class 0 black)."""
    if cfg.get("colors"):
        colours = np.asarray(cfg.colors, np.uint8)
        if len(colours) >= n:
            return colours
    return default_palette(max(n, 1)).copy()


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
