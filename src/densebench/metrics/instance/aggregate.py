"""Instance metrics from per-image statistics: point estimates, bootstrap CIs, per-image values.

Aggregation follows the literature per metric, and both conventions are given where they differ:
- pooled over the test set (sums of TP/FP/FN/IoU over all images, then the ratio): PQ/DQ/SQ,
  mPQ+ (CoNIC 2022: per-class sums over the set, then the mean over classes), per-class PQ, the
  GlaS object metrics (GlaS weights every object of the test set by its share of all objects'
  area) and both F1s;
- mean over images of a per-image value: bPQ and mPQ (PanNuke: per-image PQ, a class counted in an
  image only when the image holds ground truth of it; mPQ = mean over those classes), AJI and AJI+
  (as the MoNuSeg and HoVer-Net tools report them). Images without ground-truth objects have no
  per-image value and are left out of these means (their false positives still count in the
  pooled metrics). PanNuke further averages over its 19 tissue types; DenseBench averages over
  images, because tissue types are not a property of every dataset.

A bootstrap resample is a vector of image multiplicities (`resample_weights`, the same draws as
the semantic CIs for the same seed), so every pooled sum is one matmul and every per-image mean
a weighted mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from densebench.metrics.bootstrap import interval, resample_weights
from densebench.metrics.instance.matching import PER_CLASS, SCALARS

METRIC_KEYS = (
    "PQ",
    "DQ",
    "SQ",
    "bPQ",
    "mPQ",
    "mPQ+",
    "AJI",
    "AJI+",
    "Dice_obj",
    "Hausdorff_obj",
    "F1_obj",
    "F1_det",
    "Precision_det",
    "Recall_det",
)

DEFINITIONS = {
    "PQ": "panoptic quality DQ*SQ, class-agnostic, pooled over the test set; pairs with IoU > match_iou "
    "(Kirillov et al. CVPR 2019)",
    "DQ": "detection quality TP/(TP+FP/2+FN/2), class-agnostic, pooled",
    "SQ": "segmentation quality: mean IoU of matched pairs, class-agnostic, pooled",
    "bPQ": "binary PQ per image, mean over images with ground-truth objects (PanNuke, Gamper et al. 2020; CoNIC)",
    "mPQ": "per image, mean PQ over the classes present in its ground truth; mean over images (PanNuke)",
    "mPQ+": "per-class PQ from TP/FP/FN/IoU summed over the test set, mean over classes seen in ground truth "
    "or prediction (CoNIC 2022, Graham et al.)",
    "AJI": "aggregated Jaccard index per image, mean over images (Kumar et al. IEEE TMI 2017)",
    "AJI+": "AJI with a one-to-one maximal-IoU pairing, per image, mean over images (Graham et al. HoVer-Net 2019)",
    "Dice_obj": "GlaS object-level Dice: area-weighted Dice of each object with the other side's most-overlapping "
    "object, both directions, over all objects of the test set (Sirinukunwattana et al. MedIA 2017)",
    "Hausdorff_obj": "GlaS object-level Hausdorff distance in pixels, same weighting; an object without overlap "
    "is compared with the nearest object (GlaS 2017); lower is better",
    "F1_obj": "GlaS detection F1: a prediction covering > 50% of its most-overlapping ground-truth object is a TP, "
    "pooled",
    "F1_det": "nucleus detection F1: centroids paired one-to-one within detection_radius pixels, pooled "
    "(HoVer-Net F_d)",
    "Precision_det": "detection precision TP/predicted objects (centroid pairing), pooled",
    "Recall_det": "detection recall TP/ground-truth objects (centroid pairing), pooled",
}


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """num/den, NaN where den == 0 (nothing to score)."""
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.full_like(num, float("nan")))


def _pq(tp: Tensor, fp: Tensor, fn: Tensor, iou: Tensor) -> dict[str, Tensor]:
    """PQ, DQ, SQ; NaN when there are no objects at all, SQ = 0 when none matched (so PQ = DQ*SQ)."""
    den = tp + 0.5 * fp + 0.5 * fn
    dq = _ratio(tp, den)
    sq = torch.where(tp > 0, iou / tp.clamp(min=1), torch.where(den > 0, 0.0, float("nan")).to(tp))
    return {"PQ": dq * sq, "DQ": dq, "SQ": sq}


def _nanmean(x: Tensor, dim: int = -1) -> Tensor:
    valid = ~torch.isnan(x)
    return _ratio(torch.where(valid, x, 0).sum(dim), valid.sum(dim).to(x))


def per_image_values(stats: dict[str, Tensor]) -> dict[str, Tensor]:
    """The metrics averaged over images, for each image (N,); NaN where the image has no ground-truth objects."""
    has_gt = stats["n_gt"] > 0
    nan = torch.full_like(stats["n_gt"], float("nan"))
    fp, fn = stats["n_pred"] - stats["tp"], stats["n_gt"] - stats["tp"]
    class_pq = _pq(stats["c_tp"], stats["c_pred"] - stats["c_tp"], stats["c_gt"] - stats["c_tp"], stats["c_iou"])["PQ"]
    class_pq = torch.where(stats["c_gt"] > 0, class_pq, float("nan"))
    return {
        "bPQ": torch.where(has_gt, _pq(stats["tp"], fp, fn, stats["iou"])["PQ"], nan),
        "mPQ": _nanmean(class_pq),
        "AJI": torch.where(has_gt, _ratio(stats["aji_inter"], stats["aji_union"]), nan),
        "AJI+": torch.where(has_gt, _ratio(stats["ajip_inter"], stats["ajip_union"]), nan),
        "class_PQ": class_pq,
    }


def pooled_metrics(sums: dict[str, Tensor], image_means: dict[str, Tensor]) -> dict[str, Tensor]:
    """All METRIC_KEYS from summed statistics (any leading batch shape) and the per-image means."""
    tp, n_gt, n_pred = sums["tp"], sums["n_gt"], sums["n_pred"]
    out = _pq(tp, n_pred - tp, n_gt - tp, sums["iou"])
    out.update({k: image_means[k] for k in ("bPQ", "mPQ", "AJI", "AJI+")})
    c_tp, c_gt, c_pred = sums["c_tp"], sums["c_gt"], sums["c_pred"]
    class_pq = _pq(c_tp, c_pred - c_tp, c_gt - c_tp, sums["c_iou"])["PQ"]
    out["mPQ+"] = _nanmean(class_pq)

    area_p, area_g = sums["area_pred"], sums["area_gt"]
    zero = torch.zeros_like(area_p)
    dice = 0.5 * (
        torch.where(area_p > 0, sums["dice_pred"] / area_p.clamp(min=1), zero)
        + torch.where(area_g > 0, sums["dice_gt"] / area_g.clamp(min=1), zero)
    )
    out["Dice_obj"] = torch.where(area_p + area_g > 0, dice, float("nan"))
    out["Hausdorff_obj"] = _nanmean(
        torch.stack(
            [_ratio(sums["haus_pred"], sums["haus_area_pred"]), _ratio(sums["haus_gt"], sums["haus_area_gt"])], -1
        )
    )
    out["F1_obj"] = _ratio(2 * sums["glas_tp"], n_gt + n_pred)
    det = sums["det_tp"]
    out["F1_det"] = _ratio(2 * det, n_gt + n_pred)
    out["Precision_det"] = _ratio(det, n_pred)
    out["Recall_det"] = _ratio(det, n_gt)
    return {k: out[k] for k in METRIC_KEYS}


def stack(rows: Sequence[dict[str, np.ndarray]]) -> dict[str, Tensor]:
    """Per-image statistics as float64 tensors: (N,) scalars, (N, K) per-class vectors."""
    return {k: torch.as_tensor(np.stack([r[k] for r in rows]), dtype=torch.float64) for k in SCALARS + PER_CLASS}


def _weighted_means(values: dict[str, Tensor], weights: Tensor) -> dict[str, Tensor]:
    """Mean over images of each per-image value, images weighted (B, N); NaN values left out."""
    out = {}
    for k in ("bPQ", "mPQ", "AJI", "AJI+"):
        v = values[k]
        valid = ~torch.isnan(v)
        out[k] = _ratio(weights @ torch.where(valid, v, 0), weights @ valid.to(v))
    return out


def _resampled(stats: dict[str, Tensor], values: dict[str, Tensor], weights: Tensor) -> dict[str, Tensor]:
    sums = {k: torch.tensordot(weights, v, dims=1) for k, v in stats.items()}
    return pooled_metrics(sums, _weighted_means(values, weights))


def class_table(stats: dict[str, Tensor], values: dict[str, Tensor], names: Sequence[str]) -> dict[str, dict]:
    """Per object class: pooled PQ/DQ/SQ and counts (CoNIC), and the PanNuke per-image mean PQ."""
    total = {k: stats[k].sum(0) for k in PER_CLASS}
    tp, gt, pred = total["c_tp"], total["c_gt"], total["c_pred"]
    pq = _pq(tp, pred - tp, gt - tp, total["c_iou"])
    image_mean = _nanmean(values["class_PQ"].T)
    return {
        name: {
            **{k: float(v[i]) for k, v in pq.items()},
            "PQ_image_mean": float(image_mean[i]),
            "TP": int(tp[i]),
            "FP": int(pred[i] - tp[i]),
            "FN": int(gt[i] - tp[i]),
            "gt_objects": int(gt[i]),
            "pred_objects": int(pred[i]),
        }
        for i, name in enumerate(names)
    }


def instance_block(
    rows: Sequence[dict[str, np.ndarray]],
    class_names: Sequence[str],
    settings: dict,
    n_resamples: int,
    ci: float,
    seed: int,
    chunk: int = 250,
) -> dict:
    """The `instance` block of metrics.json from per-image statistics (see docs/metrics-schema.md)."""
    stats = stack(rows)
    n = len(rows)
    values = per_image_values(stats)
    point = _resampled(stats, values, torch.ones(1, n, dtype=torch.float64))
    weights = resample_weights(n, n_resamples, seed).double()
    boot: dict[str, list[Tensor]] = {}
    for start in range(0, n_resamples, chunk):  # bounds memory at chunk x N x K
        for k, v in _resampled(stats, values, weights[start : start + chunk]).items():
            boot.setdefault(k, []).append(v)
    total = {k: v.sum(0) for k, v in stats.items()}
    return {
        "n_images": n,
        "objects": list(class_names),
        "settings": settings,
        "metrics": {k: float(v[0]) for k, v in point.items()},
        "counts": {
            "gt_objects": int(total["n_gt"]),
            "pred_objects": int(total["n_pred"]),
            "TP": int(total["tp"]),
            "FP": int(total["n_pred"] - total["tp"]),
            "FN": int(total["n_gt"] - total["tp"]),
            "images_with_gt_objects": int((stats["n_gt"] > 0).sum()),
            "hausdorff_undefined_objects": int(total["haus_undefined"]),
        },
        "bootstrap": {
            "n_resamples": n_resamples,
            "ci": ci,
            "seed": seed,
            "metrics": {k: interval(torch.cat(v), ci) for k, v in boot.items()},
        },
        "per_class": class_table(stats, values, class_names),
        "definitions": {
            **DEFINITIONS,
            "hausdorff_undefined_objects": (
                "objects in images where the other side has no object at all: no finite Hausdorff distance "
                "(GlaS: infinite); left out of Hausdorff_obj"
            ),
        },
    }


def per_image_table(rows: Sequence[dict[str, np.ndarray]], keys: Sequence[str]) -> list[dict]:
    """One row per image: its counts and every metric computed on that image alone."""
    stats = stack(rows)
    values = per_image_values(stats)
    own = pooled_metrics(stats, values)  # each image is its own "test set"
    out = []
    for i, key in enumerate(keys):
        row = {
            "key": key,
            "gt_objects": int(stats["n_gt"][i]),
            "pred_objects": int(stats["n_pred"][i]),
            "TP": int(stats["tp"][i]),
        }
        row.update({k: float(v[i]) for k, v in own.items()})
        out.append(row)
    return out
