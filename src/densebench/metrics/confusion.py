"""Confusion matrices on the tensors' own device, with one bincount."""

from __future__ import annotations

import torch
from torch import Tensor


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = 255) -> Tensor:
    """(C, C) int64 matrix, rows = ground truth, columns = prediction; ignored pixels dropped.

    Target values outside 0..C-1 (other than ignore_index) are an error, not silently dropped.
    """
    pred, target = pred.reshape(-1), target.reshape(-1)
    keep = target != ignore_index
    pred, target = pred[keep].long(), target[keep].long()
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"target holds labels outside 0..{num_classes - 1} (and ignore {ignore_index})")
    if pred.numel() and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"prediction holds labels outside 0..{num_classes - 1}")
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)
