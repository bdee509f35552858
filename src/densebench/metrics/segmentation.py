"""Metrics from confusion matrices, batched over any leading dimensions.

Keys and averaging rules follow the published PFM-DenseBench results so numbers can be joined:
- mIoU, Mean_Dice: over classes present in ground truth or prediction (tp+fp+fn > 0);
- Mean_Accuracy, Mean_Recall: over classes present in ground truth (tp+fn > 0);
- Mean_Precision: over predicted classes (tp+fp > 0);
- Mean_F1: from per-class P and R, over classes with P+R > 0 (i.e. tp > 0). It therefore drops
  classes that were never hit, which Mean_Dice counts as 0: Mean_F1 >= Mean_Dice.
- Pixel_Accuracy, Frequency_Weighted_IoU: over all labelled pixels.
"""

from __future__ import annotations

import torch
from torch import Tensor

METRIC_KEYS = (
    "mIoU",
    "Pixel_Accuracy",
    "Mean_Accuracy",
    "Frequency_Weighted_IoU",
    "Mean_Dice",
    "Mean_Precision",
    "Mean_Recall",
    "Mean_F1",
)


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    return torch.where(den > 0, num / den.clamp(min=1e-12), torch.zeros_like(num))


def _masked_mean(values: Tensor, valid: Tensor) -> Tensor:
    n = valid.sum(-1)
    total = torch.where(valid, values, torch.zeros_like(values)).sum(-1)
    return torch.where(n > 0, total / n.clamp(min=1), torch.full_like(total, float("nan")))


def per_class(cm: Tensor) -> dict[str, Tensor]:
    """Per-class IoU, Dice, Precision, Recall, F1 (shape (..., C)); 0 where undefined."""
    cm = cm.double()
    tp = cm.diagonal(dim1=-2, dim2=-1)
    gt = cm.sum(-1)
    pr = cm.sum(-2)
    fp, fn = pr - tp, gt - tp
    precision = _ratio(tp, pr)
    recall = _ratio(tp, gt)
    return {
        "IoU": _ratio(tp, tp + fp + fn),
        "Dice": _ratio(2 * tp, 2 * tp + fp + fn),
        "Precision": precision,
        "Recall": recall,
        "F1": _ratio(2 * precision * recall, precision + recall),
    }


def summary(cm: Tensor) -> dict[str, Tensor]:
    """The eight summary metrics for (..., C, C) confusion matrices; NaN when nothing is defined."""
    cm = cm.double()
    tp = cm.diagonal(dim1=-2, dim2=-1)
    gt = cm.sum(-1)
    pr = cm.sum(-2)
    total = gt.sum(-1)
    union = gt + pr - tp
    pc = per_class(cm)
    return {
        "mIoU": _masked_mean(pc["IoU"], union > 0),
        "Pixel_Accuracy": _ratio(tp.sum(-1), total),
        "Mean_Accuracy": _masked_mean(pc["Recall"], gt > 0),
        "Frequency_Weighted_IoU": (_ratio(gt, total.unsqueeze(-1)) * pc["IoU"]).sum(-1),
        "Mean_Dice": _masked_mean(pc["Dice"], union > 0),
        "Mean_Precision": _masked_mean(pc["Precision"], pr > 0),
        "Mean_Recall": _masked_mean(pc["Recall"], gt > 0),
        "Mean_F1": _masked_mean(pc["F1"], tp > 0),
    }
