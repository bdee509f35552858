"""`synthetic`: a procedurally generated H&E-like dataset that needs no download.

Pink, fibrous stroma; pale gland lumina lined by nuclei; scattered purple nuclei of varying size.
Every image is a pure function of (seed, index), so the demo is reproducible everywhere.
"""

from __future__ import annotations

import cv2
import numpy as np
from omegaconf import DictConfig

from densebench.data import SOURCES
from densebench.data.base import Record, Sample, SegmentationSource

STROMA = np.array([236, 170, 205], np.float32)
LUMEN = np.array([248, 240, 246], np.float32)
NUCLEUS = np.array([96, 52, 140], np.float32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    noise = rng.standard_normal((h, w)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), scale)


def render(seed: int, index: int, size_range: tuple[int, int]) -> Record:
    rng = np.random.default_rng([seed, index])
    h, w = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, size=2))
    mask = np.zeros((h, w), np.uint8)
    instances = np.zeros((h, w), np.int32)

    n_glands = int(rng.integers(0, 3))
    glands = []
    for _ in range(n_glands):
        c = (int(rng.integers(20, w - 20)), int(rng.integers(20, h - 20)))
        axes = (int(rng.integers(10, 26)), int(rng.integers(8, 20)))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(mask, c, axes, angle, 0, 360, 2, -1)
        glands.append((c, axes, angle))

    centres = []
    for c, axes, angle in glands:  # nuclei lining each lumen
        for t in np.linspace(0, 2 * np.pi, int(rng.integers(8, 14)), endpoint=False):
            ca, sa = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
            ex, ey = (axes[0] + 5) * np.cos(t), (axes[1] + 5) * np.sin(t)
            centres.append((c[0] + ex * ca - ey * sa, c[1] + ex * sa + ey * ca))
    for _ in range(int(rng.integers(12, 30))):
        centres.append((rng.uniform(0, w), rng.uniform(0, h)))

    for i, (x, y) in enumerate(centres, start=1):
        axes = (int(rng.integers(3, 7)), int(rng.integers(3, 6)))
        blob = np.zeros((h, w), np.uint8)
        cv2.ellipse(blob, (int(x), int(y)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        on = (blob > 0) & (mask != 2)
        mask[on] = 1
        instances[on] = i

    image = np.empty((h, w, 3), np.float32)
    texture = _smooth_noise(rng, h, w, 1.5)[..., None] * 18 + _smooth_noise(rng, h, w, 6)[..., None] * 12
    image[:] = STROMA
    image[mask == 2] = LUMEN
    nuclei = mask == 1
    image[nuclei] = NUCLEUS + rng.normal(0, 12, size=(int(nuclei.sum()), 3))
    image += texture + rng.normal(0, 6, size=image.shape)
    image = np.clip(image, 0, 255).astype(np.uint8)
    return Record(image=image, mask=mask, instances=instances)


@SOURCES.register("synthetic")
class Synthetic(SegmentationSource):
    has_instances = True

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        self.seed = int(cfg.generator_seed)
        self.size_range = (int(cfg.min_size), int(cfg.max_size))
        self.counts = {"train": int(cfg.n_train), "val": int(cfg.n_val), "test": int(cfg.n_test)}

    def samples(self) -> list[Sample]:
        out, index = [], 0
        for split, n in self.counts.items():
            for _ in range(n):
                out.append(Sample(key=f"synthetic_{index:04d}", split=split, group=f"case{index // 2:03d}"))
                index += 1
        return out

    def load(self, sample: Sample) -> Record:
        return render(self.seed, int(sample.key.rsplit("_", 1)[1]), self.size_range)
