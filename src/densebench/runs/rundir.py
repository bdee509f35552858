"""Run directories that follow from the config, and files written atomically into them."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from densebench.config import to_dict
from densebench.files import read_json

# Overrides that name the run's identity (already in the path) or change nothing in its results (the
# runtime.* speed options change only float summation order, ~1e-6; metrics.json records them).
IDENTITY_KEYS = {"model", "adapter", "dataset", "seed"}
RUNTIME_KEYS = {
    "force",
    "output_dir",
    "device",
    "progress",
    "dataset.root",
    "dataset.mpp",
    "model.weights",
    "train.num_workers",
    "train.worker_start",
    "cache_dir",
    "eval.feature_cache",
    "eval.feature_cache.store",
    "eval.feature_cache.max_gb",
    "eval.window_batch",
    "eval.gallery.n",
    "eval.gallery.seed",
    "eval.gallery.side",
    "runtime.cpu_linear",
    "runtime.channels_last",
    "adapter.grad_checkpointing",
    "adapter.checkpoint_min_tokens",
}


def _key(override: str) -> str:
    key = override.split("=", 1)[0].lstrip("+~")
    return key


def semantic_overrides(overrides: list[str]) -> list[str]:
    """Overrides that change results, normalised and sorted (the digest input). A key given twice counts
    once, with its last value, as Hydra applies it (a sweep cell lists each key once)."""
    keep = {
        _key(o): o.lstrip("+")
        for o in overrides
        if _key(o) not in IDENTITY_KEYS | RUNTIME_KEYS and not _key(o).startswith("hydra")
    }
    return sorted(keep.values())


def run_dir(cfg: DictConfig, overrides: list[str]) -> Path:
    """`<output_dir>/<dataset>/<model>/<adapter>/seed<k>[-<digest of other overrides>]`."""
    name = f"seed{cfg.seed}"
    extra = semantic_overrides(overrides)
    if extra:
        name += "-" + hashlib.sha1("\n".join(extra).encode()).hexdigest()[:8]
    return Path(str(cfg.output_dir)) / cfg.dataset.name / cfg.model.name / cfg.adapter.name / name


def semantic_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without runtime-only keys: what must match for a resume to be valid."""
    data = to_dict(cfg)
    for dotted in RUNTIME_KEYS:
        parts = dotted.split(".")
        node = data
        for p in parts[:-1]:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return data


def first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
            if d:
                return d
        return None
    return None if a == b else prefix.rstrip(".")


def is_complete(run: Path) -> bool:
    path = run / "metrics.json"
    if not path.is_file():
        return False
    try:
        return read_json(path).get("status") == "complete"
    except (json.JSONDecodeError, OSError):
        return False


def git_commit() -> str | None:
    """The checkout's commit when DenseBench runs from a git clone, else None."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
