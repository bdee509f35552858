"""`densebench plan`: what a grid costs before it is launched — cells, done/pending, compute, memory, savings.

    densebench plan experiment=paper_grid model=uni,virchow2 dataset=glas --device-tflops 400
    densebench plan -m dataset=synthetic model=demo_vit adapter=frozen,cnn seed=0,1 --json

Arguments are those of `densebench run --multirun`: the grid is expanded exactly as the sweeper
expands it (the preset's `hydra.sweeper.params`, narrowed by command-line lists), each cell composed,
and its run directory's state read (runs/cells.py). Per cell:

- compute = training (FLOPs of one forward + backward per image × train images × epochs) + validation
  (FLOPs of one forward per window × val windows × validations) + test; FLOPs counted by bench/flops.py
  on the meta device (no weights, no memory), windows from the data's real image sizes and `eval.*`;
- hours = compute / rate: `--device-tflops` (sustained, e.g. from a GPU's bench figures), else the
  rate of a `densebench bench` result (`--bench FILE`), else this machine's measured fp32 GEMM rate
  × `--efficiency` (the engine reaches 67–84% of it on CPU, docs/performance.md);
- memory = weights + gradients and Adam state of the trainable part + the activations autograd
  saves for one step at the cell's batch size and input size (counted on the meta device);
- the saving from frozen-feature reuse: validation windows' backbone forward after the first
  validation (exact, on by default), and with `--views K` what `train.feature_cache=views:K` would
  save (a protocol change). Data loading, decoding and metrics are not counted.

Cells whose data is not found are listed with the reason and left out of the totals.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from densebench.bench.suite import _console as console
from densebench.errors import ConfigError, DenseBenchError
from densebench.runs.cells import Cell, state
from densebench.runs.rundir import semantic_overrides


@dataclass
class ModelCosts:
    """What one (model, adapter, decoder, input size, classes) combination costs per image/window."""

    train_flops: float  # forward + backward, one image
    eval_flops: float  # forward, one window
    backbone_flops: float  # the backbone's forward, one window (what feature reuse saves)
    reusable: bool  # frozen backbone: its features may be reused
    weights_bytes: float
    trainable_bytes: float
    activation_bytes: float  # saved for backward, one image


@dataclass
class CellPlan:
    overrides: list[str]
    run_dir: str
    dataset: str
    model: str
    adapter: str
    seed: int
    state: str
    input_size: int | None = None
    images: dict[str, int] = field(default_factory=dict)
    windows: dict[str, int] = field(default_factory=dict)
    tflop: float | None = None  # as configured (with the default exact eval reuse where it applies)
    tflop_no_reuse: float | None = None
    tflop_with_views: float | None = None  # with --views K
    hours: float | None = None
    memory_gb: float | None = None
    note: str | None = None


def expand(args: list[str]) -> list[list[str]]:
    """The cells' override lists, as Hydra's basic sweeper (and ours) builds them."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from densebench.config import check_group_choices, config_dir
    from densebench.runs.grid import expand as expand_grid

    configs = config_dir()
    check_group_choices(args)
    parser = OverridesParser.create()
    parsed = parser.parse_overrides(args)
    fixed = [a for a, o in zip(args, parsed) if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        base = compose("config", overrides=fixed, return_hydra_config=True)
    node = base.hydra.sweeper.get("params")
    params: dict[str, Any] = OmegaConf.to_container(node, resolve=False) if node else {}  # type: ignore[assignment]
    grid = [f"{k}={v}" for k, v in params.items()] + list(args)
    return expand_grid(parser.parse_overrides(grid))


def model_costs(cfg: DictConfig, num_classes: int, input_size: int) -> ModelCosts:
    """FLOPs and memory of one training step and one evaluation window, counted on the meta device."""
    from densebench.bench.flops import count_flops
    from densebench.model import build_model

    random: DictConfig = OmegaConf.merge(cfg, {"model": {"pretrained": False, "weights": None}})  # type: ignore[assignment]
    with torch.device("meta"):
        model = build_model(random, num_classes)
    x = torch.empty(1, 3, input_size, input_size, device="meta")
    params = {id(p) for p in model.parameters()}
    saved = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in params:
            saved[0] += t.numel() * t.element_size()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        train = count_flops(lambda: model(x).float().sum().backward())
    model.eval()
    with torch.no_grad():
        evaluation = count_flops(lambda: model(x))
        backbone = count_flops(lambda: model.backbone(x))
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return ModelCosts(
        train,
        evaluation,
        backbone,
        bool(getattr(model.adapter, "reuses_features", False)),
        sum(p.numel() * p.element_size() for p in model.parameters()),
        trainable,
        saved[0],
    )


def count_windows(side_h: int, side_w: int, window: int, mode: str, overlap: float) -> int:
    from densebench.engine.inference import window_starts

    if mode == "resize":
        return 1
    h, w = max(side_h, window), max(side_w, window)
    return len(window_starts(h, window, overlap)) * len(window_starts(w, window, overlap))


def image_size(source: Any, sample: Any) -> tuple[int, int]:
    """(H, W) of a sample: the image file's header where it is one, else a decode."""
    from PIL import Image

    for path in sample.paths[:1]:
        try:
            with Image.open(path) as im:
                return im.height, im.width
        except (OSError, ValueError):
            break
    return tuple(source.load(sample).image.shape[:2])


def data_counts(cfg: DictConfig, window: int) -> tuple[dict[str, int], dict[str, int]]:
    """Images per split and evaluation windows for val and test, from the data itself."""
    from densebench.engine.setup import load_splits

    data = load_splits(cfg)
    images = {k: len(v) for k, v in data.splits.items()}
    windows = {}
    for split in ("val", "test"):
        windows[split] = sum(
            count_windows(*image_size(data.source, s), window, str(cfg.eval.mode), float(cfg.eval.overlap))
            for s in data.splits[split]
        )
    return images, windows


def validations(epochs: int, every: int) -> int:
    return sum(1 for e in range(epochs) if (e + 1) % every == 0 or e + 1 == epochs)


def cell_compute(
    cfg: DictConfig, costs: ModelCosts, images: dict[str, int], windows: dict[str, int], views: int | None
) -> tuple[float, float, float | None]:
    """FLOPs as configured, without any reuse, and with `views` training views."""
    from densebench.engine.features import parse_views

    epochs, n_val = int(cfg.train.epochs), validations(int(cfg.train.epochs), int(cfg.train.val_every))
    plain = (
        costs.train_flops * images["train"] * epochs
        + costs.eval_flops * windows["val"] * n_val
        + costs.eval_flops * windows["test"]
    )
    if not costs.reusable:
        return plain, plain, None
    eval_reuse = str(cfg.eval.get("feature_cache", {}).get("store", "off")) != "off"
    val_saving = costs.backbone_flops * windows["val"] * max(n_val - 1, 0) if eval_reuse else 0.0

    def train_saving(k: int | None) -> float:
        return costs.backbone_flops * images["train"] * max(epochs - k, 0) if k else 0.0

    configured = plain - val_saving - train_saving(parse_views(cfg.train.get("feature_cache")))
    with_views = plain - val_saving - train_saving(views) if views else None
    return configured, plain, with_views


def memory_gb(cfg: DictConfig, costs: ModelCosts) -> float:
    """Weights + gradients + Adam's two moments of the trainable part + one step's saved activations."""
    batch = int(cfg.train.batch_size)
    return (costs.weights_bytes + 3 * costs.trainable_bytes + costs.activation_bytes * batch) / 2**30


def machine_rate(efficiency: float) -> tuple[float, str]:
    from densebench.bench.suite import gemm_gflops

    best = max(gemm_gflops().values())
    return best * efficiency * 1e9, f"this machine's fp32 GEMM {best:.0f} GFLOP/s x {efficiency:g} (measured)"


def bench_rate(path: str) -> tuple[float, str]:
    """Sustained FLOP/s of a `densebench bench --epochs N` result (its counted work per second)."""
    from densebench.files import read_json

    try:
        result = read_json(Path(path))
        rate = float(result["gflop_per_s"]) * 1e9
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            f"--bench {path}: not a `densebench bench --epochs N --out FILE` result with gflop_per_s"
        ) from None
    return rate, f"{rate / 1e9:.0f} GFLOP/s measured by densebench bench ({path})"


def plan(args: list[str], rate: float, views: int | None) -> list[CellPlan]:
    from hydra import compose, initialize_config_dir

    from densebench.backbones.catalog import build_on_meta
    from densebench.config import config_dir
    from densebench.engine.setup import resolve_input_size

    cells_overrides = expand(args)
    costs: dict[str, ModelCosts] = {}
    counts: dict[str, tuple[dict[str, int], dict[str, int]] | str] = {}
    out = []
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        for overrides in cells_overrides:
            cfg = compose("config", overrides=overrides)
            cell = Cell.from_config(cfg, overrides)
            row = CellPlan(
                list(overrides),
                str(cell.run_dir),
                cell.dataset,
                cell.model,
                cell.adapter,
                cell.seed,
                state(cell.run_dir),
            )
            out.append(row)
            try:
                size = resolve_input_size(cfg, build_on_meta(cfg.model))
                row.input_size = size
                data_key = json.dumps(
                    [
                        OmegaConf.to_container(cfg.dataset, resolve=True),
                        int(cfg.seed),
                        size,
                        OmegaConf.to_container(cfg.eval, resolve=True),
                    ],
                    sort_keys=True,
                    default=str,
                )
                if data_key not in counts:
                    try:
                        counts[data_key] = data_counts(cfg, size)
                    except DenseBenchError as exc:
                        counts[data_key] = str(exc).splitlines()[0]
                found = counts[data_key]
                if isinstance(found, str):
                    row.note = f"data not found: {found}"
                    continue
                row.images, row.windows = found
                num_classes = len(cfg.dataset.classes)
                model_key = json.dumps(
                    [OmegaConf.to_container(cfg[k], resolve=True) for k in ("model", "adapter", "decoder")]
                    + [size, num_classes],
                    default=str,
                )
                if model_key not in costs:
                    costs[model_key] = model_costs(cfg, num_classes, size)
                c = costs[model_key]
                configured, plain, with_views = cell_compute(cfg, c, row.images, row.windows, views)
                row.tflop, row.tflop_no_reuse = configured / 1e12, plain / 1e12
                row.tflop_with_views = with_views / 1e12 if with_views is not None else None
                row.hours = configured / rate / 3600
                row.memory_gb = memory_gb(cfg, c)
            except DenseBenchError as exc:
                row.note = str(exc).splitlines()[0]
    return out


def totals(cells: list[CellPlan], rate: float) -> dict[str, Any]:
    known = [c for c in cells if c.tflop is not None]
    pending = [c for c in known if c.state != "done"]

    def hours(rows: list[CellPlan], key: str) -> float:
        tflop = [getattr(c, key) if getattr(c, key) is not None else c.tflop for c in rows]
        return sum(t for t in tflop if t is not None) * 1e12 / rate / 3600

    return {
        "cells": len(cells),
        "done": sum(c.state == "done" for c in cells),
        "pending": sum(c.state != "done" for c in cells),
        "unknown": len(cells) - len(known),
        "hours_all": hours(known, "tflop"),
        "hours_pending": hours(pending, "tflop"),
        "hours_pending_no_reuse": hours(pending, "tflop_no_reuse"),
        "hours_pending_with_views": hours(pending, "tflop_with_views"),
        "max_memory_gb": max((c.memory_gb for c in known if c.memory_gb is not None), default=None),
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def render(cells: list[CellPlan], total: dict[str, Any], rate_note: str, views: int | None, console: Console) -> None:
    table = Table(title=f"{total['cells']} cells; rate: {rate_note}", title_justify="left")
    for col in (
        "cell",
        "state",
        "size",
        "train/val/test img",
        "val/test windows",
        "TFLOP",
        "hours",
        "no reuse",
        *([f"views:{views}"] if views else []),
        "memory GB",
    ):
        table.add_column(col, justify="left" if col in ("cell", "state") else "right")
    semantic = [semantic_overrides(c.overrides) for c in cells]
    common = set.intersection(*map(set, semantic)) if semantic else set()
    for c, sem in zip(cells, semantic):
        name = " ".join([c.dataset, c.model, c.adapter, f"seed{c.seed}", *(o for o in sem if o not in common)])
        if c.tflop is None:
            table.add_row(name, c.state, _fmt(c.input_size, "d"), *["-"] * (6 + bool(views)))
            continue
        table.add_row(
            name,
            c.state,
            str(c.input_size),
            "/".join(str(c.images.get(k, 0)) for k in ("train", "val", "test")),
            f"{c.windows['val']}/{c.windows['test']}",
            _fmt(c.tflop, ".1f"),
            _fmt(c.hours, ".2f"),
            _fmt(c.tflop_no_reuse, ".1f"),
            *([_fmt(c.tflop_with_views, ".1f")] if views else []),
            _fmt(c.memory_gb, ".1f"),
        )
    console.print(table)
    for c in cells:
        if c.note:
            console.print(f"[yellow]{c.dataset} {c.model} {c.adapter} seed{c.seed}: {c.note}[/]", highlight=False)
    saved = total["hours_pending_no_reuse"] - total["hours_pending"]
    console.print(
        f"{total['done']} done, {total['pending']} pending ({total['unknown']} without an estimate); "
        f"pending compute {total['hours_pending']:.2f} h (all cells {total['hours_all']:.2f} h); "
        f"frozen-feature reuse saves {saved:.2f} h of {total['hours_pending_no_reuse']:.2f} h"
        + (
            f"; with train.feature_cache=views:{views} {total['hours_pending_with_views']:.2f} h (protocol change)"
            if views
            else ""
        )
        + (f"; largest cell needs {total['max_memory_gb']:.1f} GB" if total["max_memory_gb"] is not None else ""),
        highlight=False,
    )


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="densebench plan", description=__doc__.splitlines()[0])
    p.add_argument("-m", "--multirun", action="store_true", help="accepted for symmetry with `densebench run -m`")
    p.add_argument("--device-tflops", type=float, default=None, help="sustained TFLOP/s of the device to plan for")
    p.add_argument("--bench", default=None, help="a `densebench bench --epochs N --out FILE` result: use its rate")
    p.add_argument(
        "--efficiency",
        type=float,
        default=0.75,
        help="without a rate: share of this machine's measured GEMM rate the engine sustains",
    )
    p.add_argument("--views", type=int, default=None, help="also show the cost with train.feature_cache=views:K")
    p.add_argument("--json", action="store_true", help="print JSON (cells and totals) instead of tables")
    args, overrides = p.parse_known_args(argv)
    unknown = [o for o in overrides if o.startswith("-")]
    if unknown:
        raise ConfigError(f"densebench plan: unknown option {unknown[0]}; see `densebench plan --help`")
    if args.device_tflops is not None and args.device_tflops <= 0:
        raise ConfigError(f"--device-tflops {args.device_tflops}: give the device's sustained TFLOP/s (> 0)")
    if args.views is not None and args.views < 1:
        raise ConfigError(f"--views {args.views}: give K >= 1 views per training image")
    if args.device_tflops:
        rate, note = args.device_tflops * 1e12, f"{args.device_tflops:g} TFLOP/s (given)"
    elif args.bench:
        rate, note = bench_rate(args.bench)
    else:
        rate, note = machine_rate(args.efficiency)
    cells = plan(overrides, rate, args.views)
    total = totals(cells, rate)
    if args.json:
        print(
            json.dumps(
                {
                    "rate_flop_per_s": rate,
                    "rate": note,
                    "views": args.views,
                    "totals": total,
                    "cells": [asdict(c) for c in cells],
                },
                indent=2,
            )
        )
    else:
        render(cells, total, note, args.views, console())
    return 0
