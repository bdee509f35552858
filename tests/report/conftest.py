"""Fixture run directories written exactly as docs/metrics-schema.md describes them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from densebench.metrics import METRIC_KEYS

METRICS = METRIC_KEYS  # the metric names metrics.json carries
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
PUBLISHED = SHARED / "published" / "pfm-densebench"
BOOT_SHIFT = 0.0006  # bootstrap mean = point estimate - BOOT_SHIFT in fixture runs


def run_path(root: Path, dataset: str, model: str, adapter: str, seed: int, overrides: Sequence[str] = ()) -> Path:
    """The engine's layout: <root>/<dataset>/<model>/<adapter>/seed<k>[-<digest of other overrides>]."""
    name = f"seed{seed}"
    if overrides:
        name += "-" + hashlib.sha1("\n".join(sorted(overrides)).encode()).hexdigest()[:8]
    return root / dataset / model / adapter / name


def metrics_document(
    dataset: str,
    model: str,
    adapter: str,
    seed: int,
    dice: float,
    run_dir: Path,
    *,
    overrides: Sequence[str] = (),
    ci: float = 0.02,
    input_size: int = 224,
    rank: int | None = None,
    params: int | None = 1_000_000,
    classes: Sequence[str] = ("background", "gland"),
    class_dice: Sequence[float] | None = None,
    instance: dict[str, Any] | None = None,
    display_name: str | None = None,
    published_key: str | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete metrics.json (schema version 1) whose Mean_Dice point estimate is `dice` (its bootstrap mean
    is 0.0006 lower, as a bootstrap mean differs from the point estimate)."""
    values = {m: dice - 0.01 * i for i, m in enumerate(METRICS)}
    values["Mean_Dice"] = dice
    class_dice = list(class_dice) if class_dice is not None else [dice] * len(classes)
    adapter_cfg: dict[str, Any] = {"name": adapter}
    if rank is not None:
        adapter_cfg["rank"] = rank
    test: dict[str, Any] = {
        "n_images": 4,
        "eval_mode": "slide",
        "metrics": dict(values),
        "bootstrap": {
            "n_resamples": 1000,
            "ci": 0.95,
            "seed": 0,
            "metrics": {
                m: {"mean": v - BOOT_SHIFT, "std": ci / 2, "ci_lower": v - ci, "ci_upper": v + ci}
                for m, v in values.items()
            },
        },
        "per_class": {
            c: {"IoU": d * 0.8, "Dice": d, "Precision": d, "Recall": d, "F1": d, "gt_pixels": 100, "pred_pixels": 90}
            for c, d in zip(classes, class_dice)
        },
    }
    if instance is not None:
        test["instance"] = instance
    config: dict[str, Any] = {
        "seed": seed,
        "input_size": input_size,
        "model": {"name": model, "display_name": display_name, "published_key": published_key},
        "adapter": adapter_cfg,
        "dataset": {"name": dataset, "classes": list(classes)},
    }
    for dotted, value in (settings or {}).items():  # the resolved config as the engine records it
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return {
        "schema_version": 1,
        "status": "complete",
        "run": {
            "dataset": dataset,
            "model": model,
            "adapter": adapter,
            "seed": seed,
            "run_dir": str(run_dir),
            "overrides": [f"model={model}", f"adapter={adapter}", f"dataset={dataset}", f"seed={seed}", *overrides],
            "started": "2026-01-01T00:00:00",
            "finished": "2026-01-01T00:10:00",
        },
        "code": {"version": "0.1.0", "git_commit": None},
        "config": config,
        "data": {
            "num_classes": len(classes),
            "class_names": list(classes),
            "ignore_index": 255,
            "split": "official",
            "sizes": {"train": 8, "val": 2, "test": 4},
            "fingerprint": "0123456789abcdef",
        },
        "model": {
            "name": model,
            "display_name": display_name,
            "published_key": published_key,
            "pretrained": False,
            "weights": None,
            "patch_size": 16,
            "embed_dim": 64,
            "num_prefix_tokens": 1,
            "input_size": input_size,
            "params": {
                "backbone_total": params,
                "backbone_trainable": 0,
                "adapter": 0,
                "adapter_trainable": 0,
                "decoder": 10,
                "trainable_total": 10,
                "total": (params or 0) + 10,
            },
        },
        "test": test,
        "val": {"select_metric": "Mean_Dice", "best_epoch": 1, "best": {"Mean_Dice": dice}},
        "timing": {"epochs": 1, "train_s_per_epoch": 1.0, "train_images_per_s": 8.0, "eval_s": 0.5, "total_s": 2.0},
        "memory": {"peak_rss_mb": 100.0, "peak_cuda_mb": None},
        "device": {"type": "cpu", "name": "cpu", "precision": "fp32", "torch": "2.14.1", "threads": 2},
    }


@pytest.fixture(scope="session")
def write_run() -> Callable[..., Path]:
    """write_run(root, dataset, model, adapter, seed, dice, **metrics_document options, cm=None, keys=None)."""

    def write(
        root: Path,
        dataset: str,
        model: str,
        adapter: str,
        seed: int,
        dice: float,
        *,
        cm: np.ndarray | None = None,
        keys: Sequence[str] | None = None,
        **options: Any,
    ) -> Path:
        run_dir = run_path(root, dataset, model, adapter, seed, options.get("overrides", ()))
        run_dir.mkdir(parents=True, exist_ok=True)
        doc = metrics_document(dataset, model, adapter, seed, dice, run_dir, **options)
        (run_dir / "metrics.json").write_text(json.dumps(doc))
        (run_dir / "config.yaml").write_text(
            f"seed: {seed}\nmodel:\n  name: {model}\nadapter:\n  name: {adapter}\ndataset:\n  name: {dataset}\n"
        )
        if cm is not None:
            names = np.array(keys if keys is not None else [f"img{i}" for i in range(len(cm))])
            np.savez_compressed(run_dir / "confusion_per_image.npz", cm=cm.astype(np.int64), keys=names)
        return run_dir

    return write


@pytest.fixture(scope="session")
def write_failed() -> Callable[..., Path]:
    """A run that crashed: config.yaml and error.json (as the engine writes them), no metrics.json."""

    def write(root: Path, dataset: str, model: str, adapter: str, seed: int, message: str) -> Path:
        run_dir = run_path(root, dataset, model, adapter, seed)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(
            f"seed: {seed}\nmodel:\n  name: {model}\nadapter:\n  name: {adapter}\ndataset:\n  name: {dataset}\n"
        )
        (run_dir / "error.json").write_text(
            json.dumps(
                {"type": "RuntimeError", "message": message, "traceback": "Traceback...\nRuntimeError: " + message}
            )
        )
        return run_dir

    return write


@pytest.fixture(scope="session")
def make_sweep(write_run: Callable[..., Path], write_failed: Callable[..., Path]) -> Callable[[Path], Path]:
    """make_sweep(root): 2 datasets × 3 models × 2 strategies with known Mean_Dice; partial on purpose:

    - glas/b/lora ran with seeds 0, 1, 2 (0.70, 0.72, 0.74 → 0.72 ± 0.02, n=3);
    - crag/c/lora failed (error.json); crag/c/frozen is missing entirely;
    - glas/a and glas/b tie on frozen (0.80).
    """

    def make(root: Path) -> Path:
        table = {
            ("glas", "a", "frozen"): 0.80,
            ("glas", "b", "frozen"): 0.80,
            ("glas", "c", "frozen"): 0.60,
            ("glas", "a", "lora"): 0.85,
            ("glas", "c", "lora"): 0.65,
            ("crag", "a", "frozen"): 0.70,
            ("crag", "b", "frozen"): 0.75,
            ("crag", "a", "lora"): 0.78,
            ("crag", "b", "lora"): 0.71,
        }
        params = {"a": 300_000_000, "b": 86_000_000, "c": 1_100_000_000}
        for (dataset, model, adapter), dice in table.items():
            write_run(root, dataset, model, adapter, 0, dice, params=params[model])
        for seed, dice in enumerate((0.70, 0.72, 0.74)):
            write_run(root, "glas", "b", "lora", seed, dice, params=params["b"])
        write_failed(root, "crag", "c", "lora", 0, "CUDA out of memory")
        return root

    return make


@pytest.fixture
def sweep(tmp_path: Path, make_sweep: Callable[[Path], Path]) -> Path:
    return make_sweep(tmp_path / "outputs")


LONG_NAMES = {
    "uni": "UNI (Mahmood Lab, ViT-L/16, 303M parameters)",
    "virchow2": "Virchow 2 (Paige, ViT-H/14, 632M)",
    "gigapath": "Prov-GigaPath (Microsoft, ViT-g/14, 1.1B)",
    "phikon_v2": "Phikon-v2 (Owkin, ViT-L/16)",
}


def _gallery(run_dir: Path, rng: np.random.Generator, n_images: int = 4, side: int = 256) -> None:
    """A gallery/ folder as runs write it: index.json and JPEG panels (textured, so they compress like photos)."""
    from PIL import Image

    folder = run_dir / "gallery"
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    base = np.kron(rng.integers(0, 255, (side // 8, side // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    for i in range(n_images):
        files = {}
        for panel in ("image", "truth", "pred"):
            files[panel] = f"{i:02d}_img{i}.{panel}.jpg"
            noise = rng.integers(0, 40, base.shape, dtype=np.uint8)
            Image.fromarray(base // 2 + noise).save(folder / files[panel], quality=90)
        entries.append({"key": f"img{i}", "file": f"{i:02d}_img{i}.jpg", "panels": files, "Mean_Dice": 0.7})
    (folder / "index.json").write_text(
        json.dumps(
            {
                "classes": ["background", "gland"],
                "colors": [[0, 0, 0], [255, 128, 0]],
                "ignore_index": 255,
                "seed": 0,
                "images": entries,
            }
        )
    )


@pytest.fixture(scope="session")
def seventy_runs(tmp_path_factory: pytest.TempPathFactory, write_run: Callable[..., Path]) -> Path:
    """A 70-run sweep as the issue's new user ran it: 4 backbones (long display names) × 4 strategies × 2 seeds
    on 2 datasets (64 runs) plus a LoRA-rank sweep (6 runs), every run with a 4-image prediction gallery."""
    root = tmp_path_factory.mktemp("seventy") / "outputs"
    rng = np.random.default_rng(0)
    params = {"uni": 303_350_784, "virchow2": 631_229_184, "gigapath": 1_134_953_984, "phikon_v2": 303_350_784}
    for i, model in enumerate(LONG_NAMES):
        for d, dataset in enumerate(("glas", "crag")):
            for s, adapter in enumerate(("frozen", "lora", "cnn", "full")):
                for seed in (0, 1):
                    dice = 0.6 + 0.05 * i + 0.02 * s - 0.03 * d + 0.005 * seed
                    run_dir = write_run(
                        root,
                        dataset,
                        model,
                        adapter,
                        seed,
                        dice,
                        params=params[model],
                        display_name=LONG_NAMES[model],
                        rank=16 if adapter == "lora" else None,
                    )
                    _gallery(run_dir, rng)
    for rank in (4, 8, 32):
        for dataset in ("glas", "crag"):
            run_dir = write_run(
                root,
                dataset,
                "uni",
                "lora",
                0,
                0.7 + rank / 1000,
                params=params["uni"],
                rank=rank,
                overrides=[f"adapter.rank={rank}"],
                settings={"adapter.rank": rank},
                display_name=LONG_NAMES["uni"],
            )
            _gallery(run_dir, rng)
    return root
