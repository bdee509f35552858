"""`densebench evaluate`: score a folder of predicted label PNGs against ground truth.

Files are matched by name stem; every ground-truth file needs a prediction (and vice versa), else
the command fails listing them. Masks are read as raw values (palette indices, integers), never
through a luminance conversion. The output has the shape of a run's `test` block; with
`--instances` (instance-id files, see `evaluate_instances.py`) that of its `test.instance` block.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from densebench.data.io import IMAGE_SUFFIXES, find_files, read_label, unique_by_stem
from densebench.engine import evaluate_instances
from densebench.files import write_json
from densebench.files import write_atomic
from densebench.errors import ConfigError, DataError
from densebench.metrics import METRIC_KEYS, confusion_matrix, test_block
from densebench.metrics.instance import METRIC_KEYS as INSTANCE_KEYS


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="densebench evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--pred", required=True, type=Path, help="folder of predicted class-id images")
    p.add_argument("--gt", required=True, type=Path, help="folder of ground-truth class-id images")
    p.add_argument("--num-classes", type=int, help="number of classes (required unless --instances)")
    p.add_argument("--ignore-index", type=int, default=255)
    p.add_argument("--class-names", default=None, help="comma-separated names (default: class_0, class_1, ...)")
    p.add_argument("--n-bootstrap", type=int, default=1000)
    p.add_argument("--ci", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the result as JSON instead of printing a table")
    evaluate_instances.add_arguments(p)
    args = p.parse_args(argv)
    if args.num_classes is None and not args.instances:
        p.error("--num-classes is required (unless --instances)")
    check_arguments(args)
    return args


def check_arguments(args: argparse.Namespace) -> None:
    """The numbers are checked before any file is read: a bad one is one line naming the option."""
    if args.num_classes is not None and not 1 <= args.num_classes <= 255:
        raise ConfigError(f"--num-classes {args.num_classes}: must be 1..255 (the classes in the label images)")
    if not 0 <= args.ignore_index <= 255:
        raise ConfigError(f"--ignore-index {args.ignore_index}: must be 0..255 (the label value scored as ignore)")
    if args.n_bootstrap < 1:
        raise ConfigError(f"--n-bootstrap {args.n_bootstrap}: must be at least 1")
    if not 0 < args.ci < 1:
        raise ConfigError(f"--ci {args.ci}: must be in (0, 1), e.g. 0.95")


def _label(path: Path) -> np.ndarray:
    arr = read_label(path)
    if arr.ndim != 2:
        raise DataError(f"{path}: a label image must have one channel (class ids), got shape {arr.shape}")
    return arr


def pair_files(
    pred_dir: Path, gt_dir: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES
) -> list[tuple[str, Path, Path]]:
    for d, opt in ((pred_dir, "--pred"), (gt_dir, "--gt")):
        if not d.is_dir():
            raise DataError(f"{opt} {d} is not a directory")
    preds = unique_by_stem(find_files(pred_dir, ".", suffixes), str(pred_dir))
    gts = unique_by_stem(find_files(gt_dir, ".", suffixes), str(gt_dir))
    if not gts:
        raise DataError(f"--gt {gt_dir} holds no label files ({', '.join(suffixes)})")
    missing, extra = sorted(set(gts) - set(preds)), sorted(set(preds) - set(gts))
    if missing:
        raise DataError(f"{len(missing)} ground-truth files have no prediction in {pred_dir}, e.g. {missing[:3]}")
    if extra:
        raise DataError(f"{len(extra)} predictions have no ground truth in {gt_dir}, e.g. {extra[:3]}")
    return [(k, preds[k], gts[k]) for k in sorted(gts)]


def score(pairs, num_classes: int, ignore_index: int, names: list[str], n_bootstrap: int, ci: float, seed: int) -> dict:
    cms = []
    for key, pred_path, gt_path in pairs:
        pred, gt = _label(pred_path), _label(gt_path)
        if pred.shape != gt.shape:
            raise DataError(f"{pred_path}: size {pred.shape[::-1]} differs from ground truth {gt.shape[::-1]}")
        try:
            cms.append(
                confusion_matrix(
                    torch.from_numpy(pred.astype(np.int64)),
                    torch.from_numpy(gt.astype(np.int64)),
                    num_classes,
                    ignore_index,
                )
            )
        except ValueError as exc:
            raise DataError(f"{key}: {exc}; check --num-classes/--ignore-index") from None
    return {"eval_mode": "external", **test_block(torch.stack(cms), names, n_bootstrap, ci, seed)}


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.instances:
        pairs = pair_files(args.pred, args.gt, evaluate_instances.SUFFIXES)
        result, per_image = evaluate_instances.score(pairs, args)
        if args.per_image:
            write_atomic(args.per_image, per_image)
        return _output(result, INSTANCE_KEYS, args)
    names = args.class_names.split(",") if args.class_names else [f"class_{i}" for i in range(args.num_classes)]
    if len(names) != args.num_classes:
        raise DataError(f"--class-names has {len(names)} names but --num-classes is {args.num_classes}")
    result = score(
        pair_files(args.pred, args.gt), args.num_classes, args.ignore_index, names, args.n_bootstrap, args.ci, args.seed
    )
    return _output(result, METRIC_KEYS, args)


def _output(result: dict, keys: tuple[str, ...], args: argparse.Namespace) -> int:
    """Write the result as JSON (--out) or print it as a table with its bootstrap CIs."""
    if args.out:
        write_json(args.out, result)
        print(f"wrote {args.out}")
        return 0
    table = Table(title=f"{result['n_images']} images")
    for col in ("metric", "value", f"{int(args.ci * 100)}% CI"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for key in keys:
        b = result["bootstrap"]["metrics"][key]
        table.add_row(key, f"{result['metrics'][key]:.4f}", f"[{b['ci_lower']:.4f}, {b['ci_upper']:.4f}]")
    Console().print(table)
    return 0
