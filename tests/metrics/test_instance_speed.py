"""Speed: a 1000x1000 image with ~500 nuclei scores in well under a second on one CPU core.

Run with `python -m pytest tests/metrics/test_instance_speed.py -m slow -s` to see the figures.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from densebench.metrics.instance import InstanceScorer, InstanceSettings


def nuclei(rng: np.random.Generator, n: int = 500, size: int = 1000) -> np.ndarray:
    inst = np.zeros((size, size), np.int32)
    for i in range(1, n + 1):
        centre = tuple(int(v) for v in rng.integers(5, size - 5, 2))
        axes = tuple(int(v) for v in rng.integers(5, 11, 2))
        cv2.ellipse(inst, centre, axes, float(rng.uniform(0, 180)), 0, 360, i, -1)
    return inst


@pytest.mark.slow
@pytest.mark.parametrize("method,limit", [("components", 1.0), ("watershed", 2.0)])
def test_a_large_nuclei_image_scores_fast(method, limit):
    rng = np.random.default_rng(0)
    gt = nuclei(rng)
    mask = (gt > 0).astype(np.uint8)
    pred = np.roll(mask, 2, axis=1)  # shifted, with salt-and-pepper noise: merges, misses, specks
    flip = rng.random(pred.shape) < 0.002
    pred[flip] = 1 - pred[flip]
    scorer = InstanceScorer(["background", "nucleus"], [1], InstanceSettings(method=method))
    seconds = []
    for _ in range(3):
        t0 = time.perf_counter()
        scorer.add_semantic(pred, mask, gt)  # extraction + every metric, Hausdorff included
        seconds.append(time.perf_counter() - t0)
    print(f"\n{method}: {len(np.unique(gt)) - 1} nuclei, best of 3: {min(seconds):.3f} s per 1000x1000 image")
    assert min(seconds) < limit
