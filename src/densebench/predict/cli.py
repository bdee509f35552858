"""`densebench predict RUN_DIR --input PATH --out DIR [options] [eval.KEY=VALUE ...]`.

Applies a finished run (its config.yaml and checkpoints/best.pt) to an image, a slide or a folder of
them. Images go through the run's test path at their own resolution; slides are read at the µm/px
the run was trained at (dataset.mpp, or --mpp). Options default to configs/predict.yaml.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from densebench.config import config_dir
from densebench.data.io import IMAGE_SUFFIXES, find_files, is_litter, unique_by_stem
from densebench.errors import ConfigError, DataError
from densebench.predict.images import ImageOutputs, predict_image
from densebench.predict.slide import (
    SLIDE_SUFFIXES,
    SlideOutputs,
    is_slide,
    predict_slide,
)
from densebench.predict.trained import load_run
from densebench.predict.writers import write_areas

AREAS = "areas.csv"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="densebench predict", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="a finished run directory (…/<dataset>/<model>/<adapter>/seedN)")
    p.add_argument("overrides", nargs="*", help="eval.KEY=VALUE or device=... changing the run's config")
    p.add_argument("--input", required=True, type=Path, help="an image, a slide, or a folder of them")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs (and restart unfinished slides)")
    p.add_argument("--probabilities", action="store_true", help="images: also <stem>.probs.npz (float16 C×H×W)")
    p.add_argument("--overlay", action="store_true", help="images: also <stem>.overlay.jpg")
    p.add_argument("--mpp", type=float, help="µm/px to predict slides at (default: the run's dataset.mpp)")
    p.add_argument("--slide-mpp", type=float, help="µm/px of a slide's level 0 when its metadata lacks it")
    p.add_argument("--block-windows", type=int, help="slide block side in windows")
    p.add_argument("--tissue-threshold", type=int, help="saturation (0-255) above which a pixel is tissue; 0 = off")
    p.add_argument("--progress", default="auto", choices=("auto", "rich", "plain", "none"))
    return p.parse_intermixed_args(argv)


def options(args: argparse.Namespace):
    """configs/predict.yaml with the command line's values."""
    opts = OmegaConf.load(config_dir() / "predict.yaml")
    for key in ("block_windows", "tissue_threshold"):
        if getattr(args, key) is not None:
            opts.slide[key] = getattr(args, key)
    if int(opts.slide.block_windows) < 1:
        raise ConfigError(f"--block-windows={opts.slide.block_windows}: a block needs at least one window")
    return opts


def collect_inputs(path: Path) -> list[Path]:
    """A file, or a folder's images and slides (recursively); stems must be unique (they name the outputs)."""
    suffixes = (*IMAGE_SUFFIXES, *SLIDE_SUFFIXES)
    if path.is_file():
        if path.suffix.lower() not in suffixes:
            raise DataError(f"{path}: not an image or slide ({', '.join(suffixes)})")
        return [path]
    if not path.is_dir():
        raise DataError(f"--input {path}: no such file or folder")
    found = [p for p in find_files(path, ".", suffixes) if not is_litter(p.relative_to(path))]
    if not found:
        raise DataError(f"--input {path}: the folder holds no images or slides ({', '.join(suffixes)})")
    return sorted(unique_by_stem(found, f"--input {path}").values())


def main(argv: list[str]) -> int:
    args = parse(argv)
    opts = options(args)
    inputs = collect_inputs(args.input)
    kinds = {p: ("slide" if is_slide(p) else "image") for p in inputs}
    plans = {
        p: SlideOutputs.for_input(p, args.out)
        if kinds[p] == "slide"
        else ImageOutputs.for_input(p, args.out, args.probabilities, args.overlay)
        for p in inputs
    }
    sources = {p.resolve() for p in inputs}
    clash = next((q for o in plans.values() for q in o.paths() if q.resolve() in sources), None)
    if clash is not None:
        raise DataError(f"{clash}: an output would replace this input; choose another --out")
    existing = [q for o in plans.values() for q in o.paths() if q.exists()] + [
        q for q in [args.out / AREAS] if q.exists()
    ]
    if existing and not args.force:
        raise DataError(
            f"{existing[0]} exists ({len(existing)} outputs in {args.out} would be overwritten); "
            "add --force or choose another --out"
        )
    run = load_run(args.run_dir, args.overrides)
    mpp = args.mpp if args.mpp is not None else run.cfg.dataset.get("mpp")
    slides = [p for p in inputs if kinds[p] == "slide"]
    if slides and mpp is None:
        raise ConfigError(
            f"{args.run_dir / 'config.yaml'}: dataset {run.cfg.dataset.name} has no mpp (the µm/px "
            f"it was trained at), needed for {slides[0]}; pass --mpp"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for p in inputs:
        out = plans[p]
        if isinstance(out, SlideOutputs):
            if args.force and out.partial.exists():
                shutil.rmtree(out.partial)
            rows += predict_slide(run, p, out, float(mpp), args.slide_mpp, opts.slide, args.progress)
        else:
            rows += predict_image(run, p, out, int(opts.overlay_quality), args.mpp)
    write_areas(args.out / AREAS, rows)
    print(f"wrote {len(inputs)} predictions and {args.out / AREAS}")
    return 0
