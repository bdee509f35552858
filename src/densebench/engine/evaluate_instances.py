"""`densebench evaluate --instances`: score instance predictions of any tool against instance ground truth.

One file per image in each folder, matched by name stem. Every file holds instance ids (0 = none,
1..n = one id per object, any integer type) in one of these forms:
- PNG / TIFF / BMP: a single-channel id image (16- or 32-bit for more than 255 objects);
- .npy: (H, W) ids, or (H, W, 2) with ids in channel 0 and a per-pixel type (class id) in channel 1
  (the CoNIC layout);
- .mat: `inst_map` (H, W) ids, with types (optional) as `type_map` (per pixel: CoNSeP ground truth),
  `id` + `class` (per instance: Lizard ground truth) or `inst_type` (one type per instance in id
  order, or per `inst_uid` when given: HoVer-Net's output files).
With `--pred-kind semantic` the predictions are class-id maps instead (PNG/TIFF/.npy), split into
instances as DenseBench splits its own models' predictions (`--method`, `--min-size`).

Types are class ids: 0 = background, 1..K-1 = object classes named by `--class-names` (K names,
the first for id 0). With `--class-names` both sides must carry types and mPQ/per-class PQ are
scored; without it every object is of one class and only class-agnostic metrics are meaningful.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from densebench.data.formats._nuclei import as_instances
from densebench.data.formats.hovernet import id_class_map
from densebench.data.io import IMAGE_SUFFIXES, read_label, read_mat
from densebench.errors import DataError
from densebench.metrics.instance import (
    InstanceScorer,
    InstanceSettings,
    extract,
    from_instances,
    ground_truth,
    object_classes,
)

SUFFIXES = IMAGE_SUFFIXES + (".npy", ".mat")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "--instances files:\n" + __doc__.split("\n", 2)[2]
    g = p.add_argument_group("--instances (instance ground truth and instance or semantic predictions)")
    g.add_argument("--instances", action="store_true", help="score objects: --gt/--pred hold instance-id files")
    g.add_argument(
        "--pred-kind",
        choices=("instances", "semantic"),
        default="instances",
        help="predictions are instance-id files (default) or class-id maps to split into instances",
    )
    g.add_argument(
        "--object-classes",
        default=None,
        help="comma-separated class names scored as objects (default: all but background)",
    )
    g.add_argument(
        "--method", choices=("components", "watershed"), default="components", help="how semantic predictions are split"
    )
    g.add_argument("--min-size", type=int, default=10, help="semantic predictions: drop objects under this many pixels")
    g.add_argument("--per-class", action="store_true", help="semantic predictions: components of each class apart")
    g.add_argument("--match-iou", type=float, default=0.5)
    g.add_argument("--detection-radius", type=float, default=12.0, help="centroid pairing radius in pixels (12 at 40x)")
    g.add_argument("--per-image", type=Path, default=None, help="also write per-image instance metrics to this CSV")


def _integers(arr: np.ndarray, where: str) -> np.ndarray:
    return as_instances(np.asarray(arr), where)


def _types_from_vectors(mat: dict, inst: np.ndarray, where: str) -> np.ndarray:
    """Per-pixel types from per-instance vectors: Lizard's `id`/`class`, or HoVer-Net's `inst_type`
    (aligned with `inst_uid` when present, else with ids 1..N)."""
    if "id" in mat and "class" in mat:
        return id_class_map(mat, inst, where)
    types = np.asarray(mat["inst_type"]).ravel()
    uids = np.asarray(mat["inst_uid"]).ravel() if "inst_uid" in mat else np.arange(1, types.size + 1)
    return id_class_map({"id": uids, "class": types}, inst, where)


def read_instances(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(instance ids (H, W), per-pixel types (H, W) or None) from any supported file."""
    where = str(path)
    suffix = path.suffix.lower()
    if suffix == ".mat":
        mat = read_mat(path)
        if "inst_map" not in mat:
            raise DataError(f"{where}: no 'inst_map' in the .mat (keys: {sorted(mat)})")
        inst = _integers(mat["inst_map"], where)
        if "type_map" in mat:
            return inst, _integers(mat["type_map"], where)
        vectors = "inst_type" in mat or ("id" in mat and "class" in mat)
        return inst, _types_from_vectors(mat, inst, where) if vectors else None
    arr = _read_array(path)
    if arr.ndim == 3 and arr.shape[2] == 2:
        return _integers(arr[..., 0], where), _integers(arr[..., 1], where)
    if arr.ndim != 2:
        raise DataError(f"{where}: an instance map must be (H, W) ids or (H, W, 2) ids + types, got shape {arr.shape}")
    return _integers(arr, where), None


def _read_array(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except Exception as exc:
            raise DataError(f"{path}: cannot read .npy ({type(exc).__name__}: {exc})") from None
    return read_label(path)


def read_classes(path: Path) -> np.ndarray:
    """A semantic prediction: class ids (H, W)."""
    arr = _read_array(path)
    if arr.ndim != 2:
        raise DataError(f"{path}: a class-id map must have one channel, got shape {arr.shape}")
    return _integers(arr, str(path))


def score(pairs, args: argparse.Namespace) -> tuple[dict, bytes]:
    """The instance block (and per-image CSV) for (key, pred_path, gt_path) pairs."""
    typed = args.class_names is not None
    names = args.class_names.split(",") if typed else ["background", "object"]
    chosen = args.object_classes.split(",") if args.object_classes else None
    settings = InstanceSettings(
        method=args.method,
        per_class=args.per_class,
        min_size=args.min_size,
        match_iou=args.match_iou,
        detection_radius=args.detection_radius,
    )
    ids = object_classes(names, chosen, "--object-classes")
    scorer = InstanceScorer(names, ids, settings)
    for _key, pred_path, gt_path in pairs:
        gt_inst, gt_types = read_instances(gt_path)
        if typed and gt_types is None:
            raise DataError(
                f"{gt_path}: --class-names asks for types, but this file has none (see `--help` for where types go)"
            )
        mask = (
            _check_types(gt_types, len(names), gt_path)
            if gt_types is not None and typed
            else (gt_inst > 0).astype(np.uint8)
        )
        if args.pred_kind == "semantic":
            classes = read_classes(pred_path)
            labels = _check_types(classes, len(names), pred_path) if typed else (classes > 0).astype(np.uint8)
            _same_size(labels, gt_inst, pred_path)
            pred = extract(
                labels,
                ids,
                settings.method,
                settings.per_class,
                settings.connectivity,
                settings.min_size,
                settings.watershed_h,
            )
        else:
            pred_inst, pred_types = read_instances(pred_path)
            if typed and pred_types is None:
                raise DataError(f"{pred_path}: --class-names asks for types, but this prediction has none")
            _same_size(pred_inst, gt_inst, pred_path)
            types = _check_types(pred_types, len(names), pred_path) if pred_types is not None and typed else None
            pred = from_instances(pred_inst, types, ids)
        scorer.add(ground_truth(gt_inst, mask, ids), pred)
    settings_out = {"pred_kind": args.pred_kind, "typed": typed}
    block = scorer.block(args.n_bootstrap, args.ci, args.seed, **settings_out)
    return {"eval_mode": "external", **block}, scorer.per_image_csv([k for k, _, _ in pairs])


def _check_types(types: np.ndarray, k: int, where: Path) -> np.ndarray:
    top = int(types.max(initial=0))
    if top >= k:
        raise DataError(f"{where}: type/class id {top} has no name; --class-names lists {k} (ids 0..{k - 1})")
    return types


def _same_size(a: np.ndarray, gt: np.ndarray, where: Path) -> None:
    if a.shape != gt.shape:
        raise DataError(f"{where}: size {a.shape[::-1]} differs from ground truth {gt.shape[::-1]}")
