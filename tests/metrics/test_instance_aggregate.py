"""Aggregation over images: pooled vs per-image conventions, bootstrap draws, per-class and per-image tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from densebench.metrics.bootstrap import resample_weights
from densebench.metrics.instance import Objects, image_stats, instance_block, per_image_table


def objects(boxes: list[tuple[int, int, int, int, int]], size: int = 30) -> Objects:
    """Objects from (y0, x0, y1, x1, class) boxes, ids in list order."""
    inst = np.zeros((size, size), np.int32)
    for i, (y0, x0, y1, x1, _) in enumerate(boxes, start=1):
        inst[y0:y1, x0:x1] = i
    return Objects(inst, np.array([b[4] for b in boxes], np.int64))


PERFECT = (objects([(0, 0, 5, 5, 0)]), objects([(0, 0, 5, 5, 0)]))
ALL_MISSED = (objects([(0, 0, 5, 5, 0), (10, 10, 15, 15, 0), (20, 20, 25, 25, 1)]), objects([]))
ONLY_FALSE_POSITIVES = (objects([]), objects([(0, 0, 5, 5, 0), (10, 10, 15, 15, 1)]))


def rows_of(*pairs):
    return [image_stats(g, p, 2) for g, p in pairs]


def block_of(*pairs, n=200, seed=0):
    return instance_block(rows_of(*pairs), ["a", "b"], {}, n, 0.95, seed)


def test_binary_pq_is_a_per_image_mean_and_pq_a_pooled_ratio():
    m = block_of(PERFECT, ALL_MISSED)["metrics"]
    assert m["bPQ"] == pytest.approx((1.0 + 0.0) / 2)  # PanNuke / CoNIC bPQ
    assert m["PQ"] == pytest.approx(1 / (1 + 0.5 * 0 + 0.5 * 3))  # TP 1, FN 3 over the set


def test_an_image_without_ground_truth_objects_counts_only_in_pooled_metrics():
    m = block_of(PERFECT, ONLY_FALSE_POSITIVES)["metrics"]
    assert m["bPQ"] == 1.0 and m["AJI"] == 1.0 and m["mPQ"] == 1.0
    assert m["PQ"] == pytest.approx(1 / (1 + 0.5 * 2))
    assert m["Precision_det"] == pytest.approx(1 / 3)


def test_mpq_averages_classes_present_per_image_and_mpq_plus_pools_per_class():
    # image 1: class a perfect; image 2: class a missed twice, class b missed once.
    b = block_of(PERFECT, ALL_MISSED)
    # PanNuke mPQ: image 1 -> mean(PQ_a=1) = 1 (b absent); image 2 -> mean(0, 0) = 0.
    assert b["metrics"]["mPQ"] == pytest.approx(0.5)
    # CoNIC mPQ+: class a pooled TP 1 FN 2 -> 1/(1+1); class b TP 0 FN 1 -> 0.
    assert b["metrics"]["mPQ+"] == pytest.approx((0.5 + 0.0) / 2)
    assert b["per_class"]["a"]["PQ"] == pytest.approx(0.5)
    assert b["per_class"]["a"]["PQ_image_mean"] == pytest.approx(0.5)
    assert (b["per_class"]["b"]["TP"], b["per_class"]["b"]["FN"], b["per_class"]["b"]["FP"]) == (0, 1, 0)
    assert b["per_class"]["b"]["PQ_image_mean"] == 0.0  # only image 2 has class-b ground truth


def test_a_class_never_in_ground_truth_has_no_per_image_mean():
    b = block_of(PERFECT, ONLY_FALSE_POSITIVES)
    assert math.isnan(b["per_class"]["b"]["PQ_image_mean"])
    assert b["per_class"]["b"]["PQ"] == 0.0 and b["per_class"]["b"]["FP"] == 1  # but its false positive counts


def test_bootstrap_resamples_images_with_the_semantic_draws():
    pairs = [PERFECT, ALL_MISSED, ONLY_FALSE_POSITIVES, PERFECT, ALL_MISSED]
    rows = rows_of(*pairs)
    n_boot, seed = 64, 3
    block = instance_block(rows, ["a", "b"], {}, n_boot, 0.9, seed)
    weights = resample_weights(len(rows), n_boot, seed)
    pq = []
    for w in weights.tolist():  # pooled PQ of each resample, by hand
        tp = sum(k * r["tp"] for k, r in zip(w, rows))
        fp = sum(k * (r["n_pred"] - r["tp"]) for k, r in zip(w, rows))
        fn = sum(k * (r["n_gt"] - r["tp"]) for k, r in zip(w, rows))
        iou = sum(k * r["iou"] for k, r in zip(w, rows))
        if tp + fp + fn:
            pq.append(iou / (tp + fp / 2 + fn / 2))
    expected = torch.tensor(pq, dtype=torch.float64)
    got = block["bootstrap"]["metrics"]["PQ"]
    assert got["mean"] == pytest.approx(expected.mean().item())
    assert got["ci_lower"] == pytest.approx(torch.quantile(expected, 0.05).item())
    assert block["bootstrap"]["n_resamples"] == n_boot and block["bootstrap"]["seed"] == seed


def test_the_block_counts_objects_and_explains_every_metric():
    b = block_of(PERFECT, ALL_MISSED, ONLY_FALSE_POSITIVES)
    assert b["n_images"] == 3 and b["objects"] == ["a", "b"]
    assert b["counts"] == {
        "gt_objects": 4,
        "pred_objects": 3,
        "TP": 1,
        "FP": 2,
        "FN": 3,
        "images_with_gt_objects": 2,
        "hausdorff_undefined_objects": 5,
    }
    assert set(b["metrics"]) <= set(b["definitions"]) and set(b["metrics"]) == set(b["bootstrap"]["metrics"])


def test_per_image_table_scores_each_image_alone():
    table = per_image_table(rows_of(PERFECT, ALL_MISSED), ["x", "y"])
    assert [r["key"] for r in table] == ["x", "y"]
    assert table[0]["PQ"] == 1.0 and table[0]["bPQ"] == 1.0
    assert table[1]["PQ"] == 0.0 and table[1]["gt_objects"] == 3 and table[1]["TP"] == 0
