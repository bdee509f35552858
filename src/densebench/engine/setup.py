"""Resolve what a run needs from its config: device, precision, input size, seeds, data."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig

from densebench.backbones.base import Backbone
from densebench.data import Sample, SegmentationSource, build_source
from densebench.data.fingerprint import files_fingerprint
from densebench.data.splits import make_splits
from densebench.errors import ConfigError

PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is available; use device=cpu or device=auto")
    return device


def resolve_precision(name: str, device: torch.device) -> str:
    """auto → bf16 on CUDA, fp32 on CPU. bf16 on CPU stays an explicit choice because it changes the
    numerics: on CPUs with native bf16 (AVX512-BF16, AMX) it trains 1.7-1.9x faster (docs/performance.md),
    on CPUs without it autocast is several times slower."""
    if name == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if name not in PRECISIONS:
        raise ConfigError(f"train.precision={name} is not known; use auto, bf16, fp16 or fp32")
    if name == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision=fp16 needs a CUDA device; use fp32 or bf16 on CPU")
    return name


def resolve_input_size(cfg: DictConfig, backbone: Backbone) -> int:
    """Explicit `input_size`, else `input_size_target` rounded to the patch grid, else the model's fixed
    size, else the paper's rule from the dataset's shorter side."""
    p = backbone.patch_size
    fixed = cfg.model.get("fixed_input_size")
    if cfg.get("input_size") is not None:
        size = int(cfg.input_size)
        if size <= 0 or size % p:
            lo, hi = max(p, size // p * p), (size // p + 1) * p
            raise ConfigError(
                f"input_size={size} is not a multiple of {cfg.model.name}'s patch size {p}; use {lo} or {hi}"
            )
        if fixed and size != int(fixed):
            raise ConfigError(f"model {cfg.model.name} only takes input_size={fixed}; drop the input_size override")
        return size
    if cfg.get("input_size_target") is not None:
        return nearest_patch_multiple(int(cfg.input_size_target), p, cfg.model.name, fixed)
    if fixed:
        return int(fixed)
    side = min(int(cfg.dataset.min_side), int(cfg.dataset.get("max_input_size", 1000)))
    if side < p:
        raise ConfigError(f"dataset {cfg.dataset.name}: images ({side}px) are smaller than one {p}px patch")
    return side // p * p


def nearest_patch_multiple(target: int, patch: int, model: str, fixed: int | None = None) -> int:
    """`input_size_target`: the multiple of the patch size nearest the target (ties upward), so one
    ablation grid (224 ... 1024) suits patch 8, 14 and 16 backbones alike."""
    if target <= 0:
        raise ConfigError(f"input_size_target={target} must be a positive number of pixels")
    if fixed:
        raise ConfigError(f"model {model} only takes input_size={fixed}; drop input_size_target for it")
    return max(patch, (2 * target + patch) // (2 * patch) * patch)


@dataclass
class DataSplits:
    source: SegmentationSource
    splits: dict[str, list[Sample]]

    def facts(self) -> dict:
        keys = {k: [s.key for s in v] for k, v in self.splits.items()}
        digest = hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]
        files = files_fingerprint([s for v in self.splits.values() for s in v], self.source.cfg.get("root"))
        return {
            "num_classes": self.source.num_classes,
            "class_names": self.source.classes,
            "ignore_index": self.source.ignore_index,
            "sizes": {k: len(v) for k, v in self.splits.items()},
            "fingerprint": digest,
            **({"files_fingerprint": files} if files else {}),  # sources with files only (data/fingerprint.py)
            "excluded": [{"file": str(f), "reason": r} for f, r in getattr(self.source, "excluded", [])],
        }


def load_splits(cfg: DictConfig) -> DataSplits:
    source = build_source(cfg.dataset)
    return DataSplits(source, make_splits(source.samples(), cfg.dataset, int(cfg.seed)))
