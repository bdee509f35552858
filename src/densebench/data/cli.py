"""`densebench data list|check|export`: see what a loader reads from a release before training on it.

The dataset config is composed with Hydra from the same `dataset=X key=value` overrides as
`densebench run`, so what `check` and `export` show is exactly what a run would load.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from PIL import Image
from rich.console import Console
from rich.table import Table

from densebench.config import compose as compose_config
from densebench.data import build_source
from densebench.data.base import SegmentationSource
from densebench.data.palette import colourize, palette
from densebench.data.splits import make_splits
from densebench.errors import ConfigError, DenseBenchError

console = Console(highlight=False)

USAGE = """usage: densebench data <list|check|export> [overrides...]

  densebench data list                                   every dataset config: level, classes, found/missing root
  densebench data check dataset=X dataset.root=PATH      decode every sample; list problems (exit 1 if any)
  densebench data export dataset=X dataset.root=PATH --out DIR [--limit N]
                                                         write <key>_image.png, <key>_mask.png, <key>_overlay.png

Overrides are the same as for `densebench run` (e.g. dataset.class_mode=paper, dataset.split=paper)."""


def compose(overrides: list[str]) -> DictConfig:
    """The full run config for `overrides`; any composition problem is one "cannot compose" line."""
    return compose_config(overrides, check_groups=False)


def dataset_names() -> list[str]:
    from densebench.config import group_options

    return sorted(group_options("dataset"))


class _Collect(logging.Handler):
    """Keeps the warnings a source logs while listing/decoding, for `check` to print."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# ---- list -------------------------------------------------------------------------------------------
def _status(source: SegmentationSource, cfg: DictConfig) -> str:
    try:
        n = len(source.samples())
    except DenseBenchError as exc:
        return "[yellow]root not set[/yellow]" if not cfg.get("root") else f"[red]missing[/red]: {exc}"
    left_out = f", {len(source.excluded)} file(s) left out" if source.excluded else ""
    return f"[green]found[/green] {n} images{left_out}"


def cmd_list(overrides: list[str]) -> int:
    table = Table(title="datasets (dataset=NAME)")
    for col in ("name", "level", "format", "classes", "root"):
        table.add_column(col, overflow="fold")
    for name in dataset_names():
        cfg = compose([f"dataset={name}", *overrides]).dataset
        try:
            source = build_source(cfg)
            classes = source.classes
            status = _status(source, cfg)
        except DenseBenchError as exc:
            classes, status = list(cfg.get("classes") or []), f"[red]error[/red]: {exc}"
        shown = ", ".join(classes[:4]) + (", ..." if len(classes) > 4 else "")
        table.add_row(
            name, str(cfg.level), str(cfg.format), f"{len(classes)}: {shown}" if classes else "from the data", status
        )
    console.print(table)
    return 0


# ---- check ------------------------------------------------------------------------------------------
def cmd_check(overrides: list[str]) -> int:
    full = compose(overrides)
    cfg = full.dataset
    handler = _Collect()
    logger = logging.getLogger("densebench")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        return _check(full, cfg, handler)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _check(full: DictConfig, cfg: DictConfig, handler: _Collect) -> int:
    problems: list[str] = []
    try:
        source = build_source(cfg)
        samples = source.samples()
    except DenseBenchError as exc:
        console.print(f"[red]problem:[/red] {exc}", soft_wrap=True)
        return 1
    problems += [f"{path}: {why}" for path, why in source.excluded]
    pixels = np.zeros(256, np.int64)
    images_with = np.zeros(256, np.int64)
    with_instances = 0
    for sample in _track(samples, f"checking {cfg.name}"):
        try:
            record = source.load(sample)
        except DenseBenchError as exc:
            problems.append(str(exc))
            continue
        counts = np.bincount(record.mask.ravel(), minlength=256)
        pixels += counts
        images_with += counts > 0
        with_instances += record.instances is not None and bool(record.instances.any())
    try:
        sizes = {k: len(v) for k, v in make_splits(samples, cfg, int(full.seed)).items()}
    except DenseBenchError as exc:
        problems.append(str(exc))
        sizes = {}

    tags = Counter(s.split or "none" for s in samples)
    groups = {s.group for s in samples if s.group is not None}
    console.print(
        f"[bold]{cfg.get('display_name', cfg.name)}[/bold] ({cfg.name}, format {cfg.format}) at {cfg.get('root')}"
    )
    console.print(
        f"  {len(samples)} images; release split tags: {dict(tags)}; {len(groups) or 'no'} patient/slide groups"
    )
    if sizes:
        console.print(
            f"  dataset.split={cfg.get('split_file') or cfg.get('split')}: "
            + ", ".join(f"{k} {v}" for k, v in sizes.items())
        )
    if source.has_instances:
        console.print(f"  instance maps: {with_instances} images with at least one instance")
    _histogram(source, pixels, images_with)
    for message in dict.fromkeys(handler.messages):
        console.print(f"[yellow]note:[/yellow] {message}", soft_wrap=True)
    if problems:
        console.print(f"[red]{len(problems)} problem(s):[/red]")
        for p in problems:
            console.print(f"  {p}", soft_wrap=True)
        return 1
    console.print("[green]no problems[/green]")
    return 0


def _histogram(source: SegmentationSource, pixels: np.ndarray, images_with: np.ndarray) -> None:
    table = Table(title="label histogram")
    for col in ("id", "class", "pixels", "%", "images"):
        table.add_column(col, justify="right" if col != "class" else "left")
    total = max(int(pixels.sum()), 1)
    rows = [(i, name) for i, name in enumerate(source.classes)] + [(source.ignore_index, "(ignore)")]
    for i, name in rows:
        table.add_row(str(i), name, f"{int(pixels[i]):,}", f"{100 * pixels[i] / total:.2f}", str(int(images_with[i])))
    console.print(table)


def _track(items: list, description: str):
    from rich.progress import track

    return track(items, description=description, transient=True, disable=not console.is_terminal)


# ---- export -----------------------------------------------------------------------------------------
def safe_name(key: str) -> str:
    return re.sub(r"[^\w.-]+", "_", key).strip("_") or "sample"


def cmd_export(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="densebench data export")
    parser.add_argument("--out", required=True, type=Path, help="folder for the PNGs")
    parser.add_argument("--limit", type=int, default=None, help="export only the first N samples (by key)")
    args, overrides = parser.parse_known_args(argv)
    cfg = compose(overrides).dataset
    source = build_source(cfg)
    samples = sorted(source.samples(), key=lambda s: s.key)[: args.limit]
    colours = palette(cfg, source.num_classes)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for sample in _track(samples, f"exporting {cfg.name}"):
        try:
            record = source.load(sample)
        except DenseBenchError as exc:
            console.print(f"[red]problem:[/red] {exc}", soft_wrap=True)
            failed += 1
            continue
        stem = args.out / safe_name(sample.key)
        Image.fromarray(record.image).save(f"{stem}_image.png")
        Image.fromarray(record.mask).save(f"{stem}_mask.png")
        Image.fromarray(colourize(record.image, record.mask, colours, source.ignore_index)).save(f"{stem}_overlay.png")
    console.print(
        f"wrote {len(samples) - failed} sample(s) x 3 PNGs to {args.out}" + (f"; {failed} failed" if failed else "")
    )
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] == "help" or {"-h", "--help"} & set(argv):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "list":
        return cmd_list(rest)
    if command == "check":
        return cmd_check(rest)
    if command == "export":
        return cmd_export(rest)
    raise ConfigError(f"unknown `densebench data {command}`; use list, check or export")
