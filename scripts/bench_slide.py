#!/usr/bin/env python
"""Slide prediction benchmark: windows/s and peak RSS of `densebench predict` on synthetic slides
against the evaluation path (Predictor on test-sized images) and one window batch + the model.

    python scripts/bench_slide.py RUN_DIR --sizes 20000 40000 --mpp 4.0 --work /tmp/slides

Each measurement runs in a fresh process (peak RSS = that process' ru_maxrss). The synthetic slide is
an uncompressed (`--jpeg`: JPEG) tiled pyramid (level-0 µm/px 0.25) of H&E-like tiles inside an ellipse of tissue on
white; `--mpp` sets the µm/px the run predicts at (the slide is read from the nearest level).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SLIDE_MPP = 0.25
TILE = 256


def tile_pool() -> list[np.ndarray]:
    """Eight 256² H&E-like tiles from the synthetic dataset's generator."""
    from densebench.data.formats.synthetic import render

    base = np.concatenate(
        [np.concatenate([render(99, 2 * j + i, (128, 128)).image for i in range(2)], 1) for j in range(2)], 0
    )
    return [np.roll(np.roll(base, 37 * k, 0), 53 * k, 1) for k in range(8)]


def tissue_image(side: int) -> np.ndarray:
    pool = tile_pool()
    n = math.ceil(side / TILE)
    rows = [np.concatenate([pool[(y * 7 + x * 3) % 8] for x in range(n)], 1) for y in range(n)]
    return np.ascontiguousarray(np.concatenate(rows, 0)[:side, :side])


def write_synthetic_slide(path: Path, side: int, jpeg: bool = False) -> None:
    """Tiles drawn from a small pool (so writing 40000² takes seconds), background outside an ellipse;
    `jpeg`: tiles JPEG-compressed (quality 80) as in scanners' SVS files (writing needs imagecodecs)."""
    import tifffile

    pool = tile_pool()
    white = np.full((TILE, TILE, 3), 255, np.uint8)

    def tiles(n: int):
        for ty in range(n):
            for tx in range(n):
                cy, cx = (ty + 0.5) / n - 0.5, (tx + 0.5) / n - 0.5
                yield pool[(ty * 7 + tx * 3) % len(pool)] if (cy / 0.45) ** 2 + (cx / 0.4) ** 2 <= 1 else white

    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        k = 0
        while True:
            n = math.ceil(side / 2**k / TILE)
            lvl = math.ceil(side / 2**k)
            desc = (
                f"Aperio Image Library v12.0.15\n{side}x{side} (256x256)|AppMag = 40|MPP = {SLIDE_MPP}"
                if k == 0
                else ""
            )
            tw.write(
                tiles(n),
                shape=(lvl, lvl, 3),
                dtype=np.uint8,
                tile=(TILE, TILE),
                photometric="rgb",
                description=desc,
                metadata=None,
                compression="jpeg" if jpeg else None,
                compressionargs={"level": 80} if jpeg else None,
            )
            if lvl <= 2048:
                break
            k += 1


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """CPU seconds of this process: steadier than wall time on a machine shared with other jobs."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def case_slide(run: str, slide: str, mpp: float, out: str) -> dict:
    import contextlib
    import io
    import re

    import densebench.predict.slide as slide_module
    from densebench.predict.cli import main

    phases: dict[str, float] = {}
    write_pyramid = slide_module.write_pyramid

    def timed_pyramid(*a, **k):  # the peak so far is the block phase's; the rest is the outputs'
        phases["blocks_peak_rss_mb"], phases["blocks_cpu_s"] = peak_mb(), cpu_s() - cpu0
        return write_pyramid(*a, **k)

    slide_module.write_pyramid = timed_pyramid
    log = io.StringIO()
    t0, cpu0 = time.perf_counter(), cpu_s()
    with contextlib.redirect_stdout(log):
        main([run, "--input", slide, "--out", out, "--mpp", str(mpp), "--progress", "plain", "--force"])
    total = time.perf_counter() - t0
    blocks_s = float(re.search(r"windows in ([\d.]+)s", log.getvalue()).group(1))
    facts = json.loads(next(Path(out).glob("*.slide.json")).read_text())
    return {
        "total_s": total,
        "blocks_s": blocks_s,
        "windows": facts["windows"],
        "plan": facts["plan"],
        "peak_rss_mb": peak_mb(),
        **phases,
    }


def case_eval(run: str, n_images: int) -> dict:
    """The evaluation path: the run's Predictor over test-sized images of one slide block's size."""
    import torch

    from densebench.engine.inference import window_starts
    from densebench.predict.trained import load_run

    r = load_run(Path(run))
    stride = max(1, int(r.input_size * (1 - r.predictor.overlap)))
    side = r.input_size + 7 * stride
    image = tissue_image(side)
    per_image = len(window_starts(side, r.input_size, r.predictor.overlap)) ** 2
    r.probabilities(image)  # warm-up
    t0, cpu0 = time.perf_counter(), cpu_s()
    for _ in range(n_images):
        r.probabilities(image).argmax(0).to(torch.uint8).cpu()
    seconds = time.perf_counter() - t0
    return {
        "windows": per_image * n_images,
        "seconds": seconds,
        "cpu_s": cpu_s() - cpu0,
        "image_side": side,
        "peak_rss_mb": peak_mb(),
    }


def case_batch(run: str) -> dict:
    """One window batch through the model (no sliding window): the memory floor of any prediction."""
    import torch

    from densebench.predict.trained import load_run

    r = load_run(Path(run))
    n, s = r.predictor.window_batch, r.input_size
    x = torch.randint(0, 255, (n, 3, s, s), dtype=torch.uint8)
    with torch.no_grad():
        r.predictor._forward(r.normalize(x))
    return {"window_batch": n, "window": s, "peak_rss_mb": peak_mb()}


def child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "_case", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if sys.argv[1:2] == ["_case"]:
        name, *rest = sys.argv[2:]
        result = {
            "slide": lambda: case_slide(rest[0], rest[1], float(rest[2]), rest[3]),
            "eval": lambda: case_eval(rest[0], int(rest[1])),
            "batch": lambda: case_batch(rest[0]),
        }[name]()
        print(json.dumps(result))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--sizes", type=int, nargs="+", default=[20000, 40000])
    p.add_argument("--mpp", type=float, default=2.0)
    p.add_argument("--eval-images", type=int, default=20)
    p.add_argument("--work", type=Path, default=Path("/tmp/densebench-slides"))
    p.add_argument("--jpeg", action="store_true", help="JPEG tiles as in real SVS files (pip install imagecodecs)")
    p.add_argument("--repeats", type=int, default=3, help="runs per slide: peak RSS varies by ~10 MB between runs")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    batch = child("batch", args.run_dir)
    ev = child("eval", args.run_dir, str(args.eval_images))
    print(
        f"one window batch + model: peak RSS {batch['peak_rss_mb']:.0f} MB "
        f"({batch['window_batch']} windows of {batch['window']} px)"
    )
    print(
        f"evaluation path: {ev['windows'] / ev['seconds']:.1f} windows/s "
        f"({ev['windows']} windows on {args.eval_images} images of {ev['image_side']} px), "
        f"{ev['windows'] / ev['cpu_s']:.1f} windows per CPU-second, "
        f"peak RSS {ev['peak_rss_mb']:.0f} MB"
    )
    for side in args.sizes:
        slide = args.work / f"synthetic_{side}{'_jpeg' if args.jpeg else ''}.svs"
        if not slide.is_file():
            t0 = time.perf_counter()
            write_synthetic_slide(slide, side, args.jpeg)
            print(f"wrote {slide} in {time.perf_counter() - t0:.0f}s")
        runs = [
            child("slide", args.run_dir, str(slide), str(args.mpp), str(args.work / f"out_{slide.stem}"))
            for _ in range(args.repeats)
        ]
        res, plan = runs[0], runs[0]["plan"]
        peaks = sorted(r["peak_rss_mb"] for r in runs)
        block_peaks = sorted(r["blocks_peak_rss_mb"] for r in runs)
        print(
            f"slide {side}x{side} at {args.mpp} µm/px ({plan['width']}x{plan['height']} px from level "
            f"{plan['level']}): {res['windows']} windows in {res['total_s']:.1f}s end to end = "
            f"{res['windows'] / res['total_s']:.1f} windows/s ({res['windows'] / res['blocks_s']:.1f} windows/s while predicting "
            f"blocks, {res['blocks_s']:.0f}s; {res['windows'] / res['blocks_cpu_s']:.1f} windows per CPU-second "
            f"including the model's loading); peak RSS {res['peak_rss_mb']:.0f} MB "
            f"({res['peak_rss_mb'] / batch['peak_rss_mb']:.2f}x the batch + model; "
            f"{res['blocks_peak_rss_mb']:.0f} MB until the blocks were done)"
        )
        if args.repeats > 1:
            rates = ", ".join(f"{r['windows'] / r['blocks_s']:.1f}" for r in runs)
            print(
                f"  peak RSS over {args.repeats} runs: median {peaks[len(peaks) // 2]:.0f} MB "
                f"(min {peaks[0]:.0f}, max {peaks[-1]:.0f}); until the blocks were done: median "
                f"{block_peaks[len(peaks) // 2]:.0f} MB (min {block_peaks[0]:.0f}, max {block_peaks[-1]:.0f}); "
                f"blocks windows/s {rates}"
            )
    ev = child("eval", args.run_dir, str(args.eval_images))  # again: a shared machine's load drifts
    print(
        f"evaluation path, after the slides: {ev['windows'] / ev['seconds']:.1f} windows/s, "
        f"{ev['windows'] / ev['cpu_s']:.1f} windows per CPU-second"
    )


if __name__ == "__main__":
    main()
