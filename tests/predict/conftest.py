"""A small trained run (demo ViT, synthetic data) and synthetic slides for the predict tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FAST, densebench


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A finished run directory (trained once for all predict tests, ~15 s of CPU)."""
    out = tmp_path_factory.mktemp("predict_run")
    proc = densebench("run", f"output_dir={out}", *FAST, "eval.gallery.n=0", "cache_dir=null", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (metrics,) = out.rglob("metrics.json")
    assert json.loads(metrics.read_text())["status"] == "complete"
    return metrics.parent


def tissue_canvas(height: int, width: int, seed: int = 0) -> np.ndarray:
    """H&E-like RGB: the synthetic dataset's generator tiled over a white slide, with a white margin."""
    from densebench.data.formats.synthetic import render

    tiles = [render(1234, i, (96, 96)).image for i in range(4)]
    canvas = np.full((height, width, 3), 255, np.uint8)
    rng = np.random.default_rng(seed)
    margin = width // 4
    for y in range(0, height, 96):
        for x in range(margin, width, 96):
            t = tiles[int(rng.integers(len(tiles)))]
            canvas[y : y + 96, x : x + 96] = t[: height - y, : width - x]
    return canvas


def write_slide(path: Path, rgb: np.ndarray, mpp: float | None, svs: bool = True, levels: int = 3) -> None:
    """A tiled pyramidal TIFF (downsample 1, 2, 4, ...), SVS-style description with `MPP = ` when `svs`."""
    import tifffile

    h, w = rgb.shape[:2]
    with tifffile.TiffWriter(path) as tw:
        for k in range(levels):
            level = rgb[:: 2**k, :: 2**k]
            desc = ""
            if k == 0 and svs:
                desc = f"Aperio Image Library v12.0.15\n{w}x{h} [0,0 {w}x{h}] (256x256) -> {w}x{h}|AppMag = 40"
                desc += f"|MPP = {mpp}" if mpp is not None else ""
            tw.write(level, tile=(64, 64), photometric="rgb", compression="zlib", description=desc, metadata=None)
