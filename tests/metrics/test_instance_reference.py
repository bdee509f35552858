"""Agreement with independent, loop-based implementations written from the definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from densebench.metrics.instance import Objects, image_stats
from densebench.metrics.instance.aggregate import per_image_values, pooled_metrics, stack


def random_maps(seed: int, size: int = 64, n: int = 14, classes: int = 3):
    """Overlapping random rectangles (later ones paint over earlier ones); the prediction jitters,
    drops and adds rectangles and re-types some, so every kind of error occurs."""
    rng = np.random.default_rng(seed)
    gt, pred = np.zeros((size, size), np.int32), np.zeros((size, size), np.int32)
    gt_cls, pred_cls = {}, {}
    for i in range(1, n + 1):
        y, x = rng.integers(0, size - 4, 2)
        h, w = rng.integers(3, 14, 2)
        gt[y : y + h, x : x + w] = i
        gt_cls[i] = int(rng.integers(classes))
        if rng.random() < 0.85:  # predicted, with jitter
            dy, dx, dh, dw = rng.integers(-2, 3, 4)
            pred[max(y + dy, 0) : y + dy + h + dh, max(x + dx, 0) : x + dx + w + dw] = 100 + i
            pred_cls[100 + i] = gt_cls[i] if rng.random() < 0.8 else int(rng.integers(classes))
    for j in range(int(rng.integers(0, 4))):  # false positives
        y, x = rng.integers(0, size - 4, 2)
        pred[y : y + 5, x : x + 5] = 200 + j
        pred_cls[200 + j] = int(rng.integers(classes))
    return gt, gt_cls, pred, pred_cls


def as_objects(inst: np.ndarray, cls: dict[int, int]) -> Objects:
    ids = np.unique(inst[inst > 0])
    lut = np.zeros(inst.max() + 1, np.int32)
    lut[ids] = np.arange(1, ids.size + 1)
    return Objects(lut[inst], np.array([cls[int(i)] for i in ids], np.int64))


def reference_pq(gt, pred, gt_cls=None, pred_cls=None, cls=None):
    """PQ from the definition: every pair's IoU by boolean masks, TP when IoU > 0.5."""
    g_ids = [i for i in np.unique(gt) if i and (cls is None or gt_cls[i] == cls)]
    p_ids = [j for j in np.unique(pred) if j and (cls is None or pred_cls[j] == cls)]
    ious = []
    for i in g_ids:
        for j in p_ids:
            a, b = gt == i, pred == j
            iou = (a & b).sum() / (a | b).sum()
            if iou > 0.5:
                ious.append(iou)
    tp, fp, fn = len(ious), len(p_ids) - len(ious), len(g_ids) - len(ious)
    if tp + fp + fn == 0:
        return float("nan")
    return sum(ious) / (tp + fp / 2 + fn / 2)


def reference_aji(gt, pred, plus: bool):
    g_ids, p_ids = [i for i in np.unique(gt) if i], [j for j in np.unique(pred) if j]
    inter = np.array([[((gt == i) & (pred == j)).sum() for j in p_ids] for i in g_ids], float).reshape(
        len(g_ids), len(p_ids)
    )
    union = np.array([[((gt == i) | (pred == j)).sum() for j in p_ids] for i in g_ids], float).reshape(
        len(g_ids), len(p_ids)
    )
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    if plus:  # HoVer-Net: Hungarian assignment on the full IoU matrix, pairs with IoU > 0 kept
        rows, cols = linear_sum_assignment(-iou)
        keep = iou[rows, cols] > 0
        rows, cols = rows[keep], cols[keep]
    else:  # Kumar et al.: each GT takes its best-IoU prediction, which may be taken again
        rows = np.array([r for r in range(len(g_ids)) if iou[r].max(initial=0) > 0], int)
        cols = np.array([int(np.argmax(iou[r])) for r in rows], int)
    c, u = inter[rows, cols].sum(), union[rows, cols].sum()
    u += sum((gt == g_ids[r]).sum() for r in range(len(g_ids)) if r not in set(rows.tolist()))
    u += sum((pred == p_ids[k]).sum() for k in range(len(p_ids)) if k not in set(cols.tolist()))
    return c / u


def reference_object_dice(gt, pred):
    """GlaS: each object against the other side's object of largest overlap, area-weighted."""

    def side(a, b):
        total, weighted = 0.0, 0.0
        for i in [v for v in np.unique(a) if v]:
            obj = a == i
            hits = b[obj][b[obj] > 0]
            dice = 0.0
            if hits.size:
                partner = b == np.bincount(hits).argmax()
                dice = 2 * (obj & partner).sum() / (obj.sum() + partner.sum())
            weighted += obj.sum() * dice
            total += obj.sum()
        return weighted / total

    return 0.5 * (side(gt, pred) + side(pred, gt))


def ours(gt, gt_cls, pred, pred_cls, classes=3):
    stats = stack([image_stats(as_objects(gt, gt_cls), as_objects(pred, pred_cls), classes)])
    values = per_image_values(stats)
    metrics = pooled_metrics({k: v.sum(0) for k, v in stats.items()}, {k: v[0] for k, v in values.items()})
    return metrics, values


@pytest.mark.parametrize("seed", range(12))
def test_pq_per_class_pq_aji_and_object_dice_match_loop_references(seed):
    gt, gt_cls, pred, pred_cls = random_maps(seed)
    metrics, values = ours(gt, gt_cls, pred, pred_cls)
    assert float(metrics["PQ"]) == pytest.approx(reference_pq(gt, pred), abs=1e-6)
    for c in range(3):
        expected = reference_pq(gt, pred, gt_cls, pred_cls, c)
        has_gt = any(v == c for k, v in gt_cls.items() if (gt == k).any())
        got = float(values["class_PQ"][0, c])
        if has_gt:
            assert got == pytest.approx(expected, abs=1e-6)
        else:  # PanNuke leaves a class without ground truth out of the image's mPQ
            assert np.isnan(got)
    assert float(metrics["AJI"]) == pytest.approx(reference_aji(gt, pred, plus=False), abs=1e-6)
    assert float(metrics["AJI+"]) == pytest.approx(reference_aji(gt, pred, plus=True), abs=1e-6)
    assert float(metrics["Dice_obj"]) == pytest.approx(reference_object_dice(gt, pred), abs=1e-6)
