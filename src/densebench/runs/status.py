"""`densebench status [RUNS_DIR]`: the state of every cell of the sweeps launched into an output directory.

The expected cells come from the manifests the sweeper writes at launch (`<sweep dir>/cells.json`,
engine/cells.py), so cells that never started show up as missing. RUNS_DIR is an output root
(every sweep under its `multirun/`) or one sweep directory. Rows are dataset · model, columns
adapter plus whatever else tells the cells apart (seed, overrides such as `finetune=lora_r4`).
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from densebench.runs.cells import STATES, Cell, find_manifests, read_manifest, state
from densebench.files import read_json
from densebench.errors import DenseBenchError

GLYPHS = {"done": "[green]✓[/]", "running": "[cyan]▶[/]", "failed": "[red]✗[/]", "interrupted": "[yellow]‖[/]",
          "missing": "[dim]·[/]"}
STYLES = {"done": "green", "running": "cyan", "failed": "red", "interrupted": "yellow", "missing": "dim"}


def expected_cells(root: Path) -> list[Cell]:
    """Every cell of every sweep found under `root`, once each (a later sweep may repeat a cell)."""
    seen: dict[Path, Cell] = {}
    for manifest in find_manifests(root):
        for cell in read_manifest(manifest):
            seen.setdefault(cell.run_dir, cell)
    return list(seen.values())


def discovered_cells(root: Path) -> list[Cell]:
    """Run directories found under `root` (no manifest: single runs), from their saved config.yaml.

    Without a manifest nothing is known to be missing; variants of one cell are told apart by
    their run-directory name (seed and override digest).
    """
    from omegaconf import OmegaConf

    cells = []
    for saved in sorted(root.rglob("config.yaml")):
        if {"multirun", ".cache"} & set(saved.relative_to(root).parts):
            continue
        cfg = OmegaConf.load(saved)
        try:
            cells.append(Cell((f"run={saved.parent.name}",), saved.parent, str(cfg.dataset.name),
                              str(cfg.model.name), str(cfg.adapter.name), int(cfg.seed)))
        except Exception:  # not a DenseBench run directory
            continue
    return cells


def column_labels(cells: list[Cell]) -> list[str]:
    """Adapter, plus the seed and overrides that vary between cells (those shared by all say nothing)."""
    common = set.intersection(*(set(c.semantic) for c in cells)) if cells else set()
    many_seeds = len({c.seed for c in cells}) > 1
    labels = []
    for c in cells:
        extra = [o for o in c.semantic if o not in common]
        labels.append(" ".join([c.adapter, *([f"seed{c.seed}"] if many_seeds else []), *extra]))
    return labels


def error_line(run_dir: Path) -> str:
    try:
        error = read_json(run_dir / "error.json")
    except (OSError, ValueError):
        return "error.json unreadable"
    message = str(error.get("message", "")).strip().splitlines()
    return f"{error.get('type', 'Error')}: {message[0] if message else ''}"


def render(root: Path, cells: list[Cell], console: Console) -> Counter:
    states = [state(c.run_dir) for c in cells]
    labels = column_labels(cells)
    columns = list(dict.fromkeys(labels))
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for cell, label, st in zip(cells, labels, states):
        rows.setdefault((cell.dataset, cell.model), {})[label] = st
    counts = Counter(states)
    table = Table(title=f"{root}: {len(cells)} cells", title_justify="left")
    table.add_column("dataset · model")
    for col in columns:
        table.add_column(col, justify="center")
    for (dataset, model), by_col in rows.items():
        table.add_row(f"{dataset} · {model}", *(GLYPHS[by_col[c]] if c in by_col else "" for c in columns))
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
    parser.add_argument("runs_dir", nargs="?", type=Path, default=Path(os.environ.get("DENSEBENCH_OUTPUT", "outputs")),
                        help="output_dir of the sweeps ($DENSEBENCH_OUTPUT or ./outputs), or one sweep directory")
    args = parser.parse_args(argv)
    root: Path = args.runs_dir
    if not root.is_dir():
        raise DenseBenchError(f"{root} is not a directory; pass the output_dir your sweeps wrote to")
    cells = expected_cells(root) or discovered_cells(root)
    if not cells:
        raise DenseBenchError(
            f"no runs under {root}: neither a sweep manifest (multirun/*/cells.json) nor run directories "
            "with a config.yaml; pass the output_dir your runs wrote to"
        )
    render(root, cells, Console(soft_wrap=True))
    return 0
