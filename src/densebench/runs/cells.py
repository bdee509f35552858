"""The cells of a sweep: where each one writes (recorded at launch) and what state it is in now.

The sweeper composes every cell before launching it anyway; it records each cell's overrides and
run directory in `<sweep dir>/cells.json`. `densebench status` reads these manifests to tell done,
running, failed, interrupted and missing cells apart, and the sweeper uses the same states to skip
finished and running cells without submitting a job for them. Run directories are stored relative
to the manifest, so moving a whole output tree keeps its manifests valid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig

from densebench.runs.lock import holder
from densebench.files import read_json, write_json
from densebench.runs.rundir import is_complete, run_dir, semantic_overrides

MANIFEST = "cells.json"
STATES = ("done", "running", "failed", "interrupted", "missing")


@dataclass(frozen=True)
class Cell:
    overrides: tuple[str, ...]
    run_dir: Path
    dataset: str
    model: str
    adapter: str
    seed: int

    @classmethod
    def from_config(cls, cfg: DictConfig, overrides: list[str]) -> "Cell":
        return cls(
            tuple(overrides),
            run_dir(cfg, overrides),
            str(cfg.dataset.name),
            str(cfg.model.name),
            str(cfg.adapter.name),
            int(cfg.seed),
        )

    @property
    def semantic(self) -> list[str]:
        """Overrides beyond the identity (model, dataset, adapter, seed) that change results."""
        return semantic_overrides(list(self.overrides))


def state(path: Path) -> str:
    """done (complete metrics.json) > running (live lock) > failed (error.json) > interrupted > missing."""
    if is_complete(path):
        return "done"
    if holder(path) is not None:
        return "running"
    if (path / "error.json").is_file():
        return "failed"
    return "interrupted" if path.is_dir() else "missing"


def write_manifest(sweep_dir: Path, cells: list[Cell]) -> Path:
    sweep_dir = Path(sweep_dir).resolve()
    path = sweep_dir / MANIFEST
    write_json(
        path,
        {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "cells": [
                {
                    "overrides": list(c.overrides),
                    "run_dir": os.path.relpath(Path(c.run_dir).resolve(), sweep_dir),
                    "dataset": c.dataset,
                    "model": c.model,
                    "adapter": c.adapter,
                    "seed": c.seed,
                }
                for c in cells
            ],
        },
    )
    return path


def read_manifest(path: Path) -> list[Cell]:
    data = read_json(path)
    return [
        Cell(
            tuple(c["overrides"]),
            Path(os.path.normpath(path.parent / c["run_dir"])),
            c["dataset"],
            c["model"],
            c["adapter"],
            int(c["seed"]),
        )
        for c in data["cells"]
    ]


def find_manifests(root: Path) -> list[Path]:
    """Manifests of `root` itself (a sweep directory) or of the sweeps under `root/multirun/`, oldest first."""
    if (root / MANIFEST).is_file():
        return [root / MANIFEST]
    return sorted(root.glob(f"multirun/*/{MANIFEST}"), key=lambda p: p.stat().st_mtime)
