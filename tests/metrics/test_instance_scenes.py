"""Hand-built label maps with answers worked out by hand from the published definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from densebench.metrics.instance import Objects, from_instances, image_stats
from densebench.metrics.instance.aggregate import per_image_values, pooled_metrics, stack


def metrics_of(gt: np.ndarray, pred: np.ndarray, radius: float = 3.0) -> dict[str, float]:
    """All instance metrics of a single image given as two instance maps (one object class)."""
    row = image_stats(from_instances(gt, None, [1]), from_instances(pred, None, [1]), 1, radius=radius)
    stats = stack([row])
    out = pooled_metrics({k: v.sum(0) for k, v in stats.items()}, {k: v[0] for k, v in per_image_values(stats).items()})
    return {k: float(v) for k, v in out.items()}


def box(canvas: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], value: int) -> None:
    canvas[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = value


def scene() -> tuple[np.ndarray, np.ndarray]:
    """One perfect object, one merged pair, one split object, one missed object, one false positive.

    GT:   A 8x8 (64 px) | B1 8x8 (64) + B2 8x4 (32), touching | C 8x12 (96) | D 8x6 (48)
    pred: PA = A | P2 = B1 u B2 (96) | P3 8x8 (64) + P4 8x4 (32) splitting C | P5 6x6 (36) alone
    """
    gt, pred = np.zeros((40, 40), np.int32), np.zeros((40, 40), np.int32)
    box(gt, (2, 9), (2, 9), 1)  # A
    box(gt, (2, 9), (14, 21), 2)  # B1
    box(gt, (2, 9), (22, 25), 3)  # B2
    box(gt, (14, 21), (2, 13), 4)  # C
    box(gt, (14, 21), (20, 25), 5)  # D (missed)
    box(pred, (2, 9), (2, 9), 7)  # PA (ids need not be contiguous or ordered)
    box(pred, (2, 9), (14, 25), 3)  # P2 merges B1 and B2
    box(pred, (14, 21), (2, 9), 9)  # P3 } split C
    box(pred, (14, 21), (10, 13), 4)  # P4 }
    box(pred, (28, 33), (30, 35), 1)  # P5 false positive
    return gt, pred


def test_a_perfect_prediction_scores_pq_one_and_hausdorff_zero():
    gt, _ = scene()
    m = metrics_of(gt, gt)
    for key in ("PQ", "DQ", "SQ", "bPQ", "mPQ", "mPQ+", "AJI", "AJI+", "Dice_obj", "F1_obj", "F1_det"):
        assert m[key] == pytest.approx(1.0), key
    assert m["Hausdorff_obj"] == 0.0


def test_merge_split_miss_and_false_positive_give_the_hand_computed_pq():
    m = metrics_of(*scene())
    # IoU > 0.5 pairs: A-PA = 1, B1-P2 = 64/96, C-P3 = 64/96 -> TP 3; FP: P4, P5; FN: B2, D.
    tp, fp, fn, iou_sum = 3, 2, 2, 1 + 64 / 96 + 64 / 96
    assert m["DQ"] == pytest.approx(tp / (tp + fp / 2 + fn / 2))  # 0.6
    assert m["SQ"] == pytest.approx(iou_sum / tp)  # 7/9
    assert m["PQ"] == pytest.approx(7 / 15)
    assert m["bPQ"] == m["mPQ"] == m["mPQ+"] == pytest.approx(m["PQ"])


def test_aji_reuses_the_merged_prediction_and_aji_plus_pairs_one_to_one():
    m = metrics_of(*scene())
    # AJI: A->PA (64/64), B1->P2 (64/96), B2->P2 again (32/96), C->P3 (64/96), D unpaired (+48),
    # predictions no one took: P4 (32) + P5 (36).
    assert m["AJI"] == pytest.approx((64 + 64 + 32 + 64) / (64 + 96 + 96 + 96 + 48 + 32 + 36))
    # AJI+: A-PA, B1-P2, C-P3; unpaired GT B2 (32) + D (48), unpaired predictions P4 (32) + P5 (36).
    assert m["AJI+"] == pytest.approx((64 + 64 + 64) / (64 + 96 + 96 + 32 + 48 + 32 + 36))


def test_detection_f1_pairs_centroids_one_to_one_within_the_radius():
    # radius 3: A-PA (0 px), B1-P2 (2 px; B2 is 4 px away), C-P3 (2 px; P4 is 4 px away); D and P5 stay alone.
    assert metrics_of(*scene(), radius=3)["F1_det"] == pytest.approx(2 * 3 / (5 + 5))
    # radius 12: P4 now reaches D (11 px) as well as C; pairing keeps as many pairs as possible: C-P3, D-P4.
    m = metrics_of(*scene(), radius=12)
    assert m["F1_det"] == pytest.approx(2 * 4 / (5 + 5))
    assert m["Precision_det"] == m["Recall_det"] == pytest.approx(4 / 5)


def test_glas_object_f1_and_dice_follow_the_most_overlapping_object():
    m = metrics_of(*scene())
    # GlaS F1: PA, P2 (64 of B1's 64) and P3 (64 of C's 96) cover > 50% of their best GT; P4, P5 do not.
    assert m["F1_obj"] == pytest.approx(2 * 3 / (5 + 5))
    # Dice of each object with its most-overlapping partner, weighted by area, both directions.
    pred_side = (64 * 1 + 96 * 0.8 + 64 * 0.8 + 32 * (2 * 32 / 128) + 36 * 0) / (64 + 96 + 64 + 32 + 36)
    gt_side = (64 * 1 + 64 * 0.8 + 32 * (2 * 32 / 128) + 96 * 0.8 + 48 * 0) / (64 + 64 + 32 + 96 + 48)
    assert m["Dice_obj"] == pytest.approx(0.5 * (pred_side + gt_side))


def test_pq_matching_needs_iou_strictly_above_one_half():
    gt, pred = np.zeros((10, 10), np.int32), np.zeros((10, 10), np.int32)
    gt[0:4, 0:4] = 1
    pred[0:4, 0:2] = 1  # IoU exactly 8/16
    m = metrics_of(gt, pred)
    assert m["DQ"] == 0.0 and m["PQ"] == 0.0


def test_an_image_without_objects_on_either_side_has_no_instance_scores():
    empty = np.zeros((8, 8), np.int32)
    m = metrics_of(empty, empty)
    assert all(math.isnan(m[k]) for k in ("PQ", "bPQ", "AJI", "Dice_obj", "Hausdorff_obj", "F1_det"))


def test_object_classes_must_agree_for_multi_class_pq():
    gt, pred = scene()
    classes_gt = np.array([0, 1, 1, 0, 0])  # A, B1, B2, C, D
    g = from_instances(gt, None, [1])
    p = from_instances(pred, None, [1])
    g = Objects(g.inst, classes_gt)
    p = Objects(p.inst, np.array([0, 0, 0, 0, 0]))  # P2 (pairs with B1 of class 1) is typed 0
    stats = stack([image_stats(g, p, 2, radius=3)])
    assert stats["c_tp"][0].tolist() == [2, 0]  # A-PA and C-P3 keep their class; B1-P2 does not
    assert stats["tp"][0] == 3  # the class-agnostic match is unaffected
    class_pq = per_image_values(stats)["class_PQ"][0]
    # class 0: TP A-PA (1) and C-P3 (2/3), FP P2 P4 P5, FN D; class 1: TP 0, FN B1 B2.
    assert class_pq[0].item() == pytest.approx((1 + 2 / 3) / (2 + 1.5 + 0.5))
    assert class_pq[1].item() == 0.0
    assert torch.isclose(per_image_values(stats)["mPQ"][0], class_pq.mean().to(torch.float64))
