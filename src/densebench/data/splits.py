"""Train/val/test splits: official, the paper's random 70/20/10, patient-grouped, or an explicit file.

Every random split is seeded; the resulting file lists are written into the run directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from densebench.data.base import Sample
from densebench.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


def _fractions(cfg: DictConfig) -> tuple[float, float, float]:
    f = tuple(float(x) for x in cfg.get("fractions", (0.7, 0.2, 0.1)))
    if len(f) != 3 or abs(sum(f) - 1) > 1e-6:
        raise ConfigError(f"dataset.fractions={list(f)} must be three numbers summing to 1")
    return f


def _cut(items: Sequence, fractions: tuple[float, float, float]) -> tuple[list, list, list]:
    """The paper's rule: train=int(0.7n), val=int(0.2n), test=rest."""
    n = len(items)
    a = int(fractions[0] * n)
    b = a + int(fractions[1] * n)
    return list(items[:a]), list(items[a:b]), list(items[b:])


def random_split(samples: Sequence[Sample], fractions, seed: int) -> dict[str, list[Sample]]:
    order = np.random.default_rng(seed).permutation(len(samples))
    parts = _cut([samples[i] for i in order], fractions)
    return dict(zip(SPLITS, parts))


def grouped_split(samples: Sequence[Sample], fractions, seed: int) -> dict[str, list[Sample]]:
    """Split whole groups (patients/slides) so none spans two splits; sizes follow group counts."""
    groups = sorted({s.group if s.group is not None else s.key for s in samples})
    order = np.random.default_rng(seed).permutation(len(groups))
    parts = _cut([groups[i] for i in order], fractions)
    where = {g: name for name, part in zip(SPLITS, parts) for g in part}
    out: dict[str, list[Sample]] = {k: [] for k in SPLITS}
    for s in samples:
        out[where[s.group if s.group is not None else s.key]].append(s)
    return out


def official_split(samples: Sequence[Sample], val_fraction: float, seed: int) -> dict[str, list[Sample]]:
    """The release's train/test; validation carved from train (by group when groups are known)."""
    tags = {s.split for s in samples}
    if not tags & {"train", "test"} or None in tags:
        raise ConfigError("this release defines no official train/test split; use dataset.split=grouped or paper")
    out = {k: [s for s in samples if s.split == k] for k in SPLITS}
    if not out["val"]:
        carved = grouped_split(out["train"], (1 - val_fraction, val_fraction, 0.0), seed)
        # _cut's rounding remainder lands in carved["test"]: it belongs to train, not dropped.
        out["train"], out["val"] = carved["train"] + carved["test"], carved["val"]
    return out


def file_split(samples: Sequence[Sample], path: str | Path) -> dict[str, list[Sample]]:
    """Explicit lists: JSON {"train": [keys], "val": [...], "test": [...]}; unknown keys are an error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"dataset.split_file={path} does not exist")
    lists = json.loads(path.read_text())
    by_key = {s.key: s for s in samples}
    out = {}
    for name in SPLITS:
        keys = lists.get(name, [])
        unknown = [k for k in keys if k not in by_key]
        if unknown:
            raise DataError(f"{path}: {len(unknown)} {name} keys not in the dataset, e.g. {unknown[:3]}")
        out[name] = [by_key[k] for k in keys]
    return out


def make_splits(samples: Sequence[Sample], cfg: DictConfig, seed: int) -> dict[str, list[Sample]]:
    """Apply `dataset.split` (official | paper | grouped) or `dataset.split_file`."""
    samples = sorted(samples, key=lambda s: s.key)
    if cfg.get("split_file"):
        out = file_split(samples, cfg.split_file)
    else:
        mode = cfg.split
        split_seed = int(cfg.get("split_seed", seed))
        if mode == "official":
            out = official_split(samples, float(cfg.val_fraction), split_seed)
        elif mode == "paper":
            out = random_split(samples, _fractions(cfg), split_seed)
        elif mode == "grouped":
            out = grouped_split(samples, _fractions(cfg), split_seed)
        else:
            raise ConfigError(
                f"dataset.split={mode} is not known; use official, paper, grouped or dataset.split_file=PATH"
            )
    for name in SPLITS:
        if not out[name]:
            raise DataError(f"dataset '{cfg.name}': the {name} split is empty ({len(samples)} samples found)")
    return out
