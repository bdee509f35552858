"""`densebench status [RUNS_DIR]`: the state of every cell of the sweeps launched into an output directory.

The expected cells come from the manifests the sweeper writes at launch (`<sweep dir>/cells.json`,
runs/cells.py), so cells that never started show up as missing; run directories outside any sweep
(single runs) are shown too. RUNS_DIR is an output root (every sweep under its `multirun/`) or one
sweep directory. One table per group of settings that tells cells apart (e.g. `finetune=lora_r4`):
rows dataset · model, a column per adapter, one mark per seed, so it reads in 80 columns.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from densebench.runs.cells import STATES, Cell, find_manifests, read_manifest, state
from densebench.files import read_json
from densebench.errors import DenseBenchError

GLYPHS = {
    "done": "[green]✓[/]",
    "running": "[cyan]▶[/]",
    "failed": "[red]✗[/]",
    "interrupted": "[yellow]‖[/]",
    "missing": "[dim]·[/]",
}
STYLES = {"done": "green", "running": "cyan", "failed": "red", "interrupted": "yellow", "missing": "dim"}


def expected_cells(root: Path) -> list[Cell]:
    """Every cell of every sweep found under `root`, once each (a later sweep may repeat a cell)."""
    seen: dict[Path, Cell] = {}
    for manifest in find_manifests(root):
        for cell in read_manifest(manifest):
            seen.setdefault(cell.run_dir, cell)
    return list(seen.values())


def _recorded_overrides(run_dir: Path) -> tuple[str, ...] | None:
    """The overrides a run recorded (metrics.json `run.overrides`, else error.json `overrides`)."""
    for name, pick in (
        ("metrics.json", lambda d: (d.get("run") or {}).get("overrides")),
        ("error.json", lambda d: d.get("overrides")),
    ):
        try:
            found = pick(read_json(run_dir / name))
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(found, list):
            return tuple(str(o) for o in found)
    return None


def discovered_cells(root: Path) -> list[Cell]:
    """Run directories found under `root` from their saved config.yaml: single runs, and sweeps' runs.

    Without a manifest nothing is known to be missing; the settings of a run come from the overrides it
    recorded, else from its run-directory name (seed and override digest).
    """
    from omegaconf import OmegaConf

    cells = []
    for saved in sorted(root.rglob("config.yaml")):
        if {"multirun", ".cache"} & set(saved.relative_to(root).parts):
            continue
        cfg = OmegaConf.load(saved)
        try:
            overrides = _recorded_overrides(saved.parent) or (f"run={saved.parent.name}",)
            cells.append(
                Cell(
                    overrides,
                    saved.parent,
                    str(cfg.dataset.name),
                    str(cfg.model.name),
                    str(cfg.adapter.name),
                    int(cfg.seed),
                )
            )
        except Exception:  # not a DenseBench run directory
            continue
    return cells


def all_cells(root: Path) -> list[Cell]:
    """The sweeps' cells (missing ones included) and every other run directory under `root` (single runs)."""
    cells = expected_cells(root)
    known = {c.run_dir.resolve() for c in cells}
    return cells + [c for c in discovered_cells(root) if c.run_dir.resolve() not in known]


def variant_labels(cells: list[Cell]) -> list[str]:
    """Per cell the settings, beyond dataset, model, adapter and seed, that tell it apart from the others
    (those every cell shares say nothing); '' for cells with none."""
    common = set.intersection(*(set(c.semantic) for c in cells)) if cells else set()
    return [" ".join(o for o in c.semantic if o not in common) for c in cells]


def error_line(run_dir: Path) -> str:
    try:
        error = read_json(run_dir / "error.json")
    except (OSError, ValueError):
        return "error.json unreadable"
    message = str(error.get("message", "")).strip().splitlines()
    return f"{error.get('type', 'Error')}: {message[0] if message else ''}"


def _adapter_order(adapters: set[str]) -> list[str]:
    """The report's strategy order (adapter configs' report_order), so every view lists strategies alike."""
    from densebench.config import config_dir
    from densebench.errors import DenseBenchError
    from densebench.names import Catalog

    try:
        return Catalog.load(config_dir()).strategy_order(adapters)
    except DenseBenchError:
        return sorted(adapters)


def render(root: Path, cells: list[Cell], console: Console) -> Counter:
    """One table per group of settings (what differs between cells): rows dataset · model, a column per
    adapter, one glyph per seed in each cell; narrow enough for 80 columns, names folded, never cut."""
    states = [state(c.run_dir) for c in cells]
    labels = variant_labels(cells)
    seeds = sorted({c.seed for c in cells})
    counts = Counter(states)
    console.print(
        f"{root}: {len(cells)} cells"
        + (f", seeds {', '.join(map(str, seeds))} (one mark per seed)" if len(seeds) > 1 else ""),
        highlight=False,
    )
    for label in dict.fromkeys(sorted(labels)):
        group = [(c, st) for c, st, lab in zip(cells, states, labels) if lab == label]
        adapters = _adapter_order({c.adapter for c, _ in group})
        marks: dict[tuple[str, str], dict[str, dict[int, str]]] = {}
        for c, st in group:
            marks.setdefault((c.dataset, c.model), {}).setdefault(c.adapter, {})[c.seed] = st
        title = label or ("the shared settings" if any(labels) else "")
        table = Table(title=title or None, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("dataset · model", overflow="fold", ratio=3, min_width=12)
        for adapter in adapters:
            table.add_column(adapter, justify="center", overflow="fold", ratio=1, min_width=3)
        for (dataset, model), by_adapter in marks.items():
            row = []
            for adapter in adapters:
                per_seed = by_adapter.get(adapter, {})
                row.append(
                    "".join(GLYPHS[per_seed[s]] if s in per_seed else " " for s in seeds).rstrip() if per_seed else ""
                )
            table.add_row(f"{dataset} · {model}", *row)
        console.print(table)
    console.print("  ".join(f"[{STYLES[s]}]{GLYPHS[s]} {s} {counts[s]}[/]" for s in STATES))
    failed = [c for c, s in zip(cells, states) if s == "failed"]
    if failed:
        console.print("[red]failed:[/]")
        for cell in failed:
            console.print(f"  {_shown(cell.run_dir, root)}: {error_line(cell.run_dir)}", highlight=False)
    return counts


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="densebench status",
        description="Done / running / failed / interrupted / missing cells of the sweeps in an output directory.",
    )
    parser.add_argument(
        "runs_dir",
        nargs="?",
        type=Path,
        default=Path(os.environ.get("DENSEBENCH_OUTPUT", "outputs")),
        help="output_dir of the sweeps ($DENSEBENCH_OUTPUT or ./outputs), or one sweep directory",
    )
    args = parser.parse_args(argv)
    root: Path = args.runs_dir
    if not root.is_dir():
        raise DenseBenchError(f"{root} is not a directory; pass the output_dir your sweeps wrote to")
    cells = all_cells(root)
    if not cells:
        raise DenseBenchError(
            f"no runs under {root}: neither a sweep manifest (multirun/*/cells.json) nor run directories "
            "with a config.yaml; pass the output_dir your runs wrote to"
        )
    render(root, cells, Console(soft_wrap=True))
    return 0
