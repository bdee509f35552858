"""Metrics agree with an independent per-class implementation of the paper's definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from densebench.metrics import METRIC_KEYS, bootstrap, confusion_matrix, summary


def reference_metrics(gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore: int = 255) -> dict[str, float]:
    """Straightforward loops over classes, written from the definitions (not from the implementation)."""
    keep = gt != ignore
    gt, pred = gt[keep], pred[keep]
    ious, dices, precisions, recalls, f1s = [], [], [], [], []
    fw = 0.0
    for c in range(num_classes):
        tp = np.sum((gt == c) & (pred == c))
        fp = np.sum((gt != c) & (pred == c))
        fn = np.sum((gt == c) & (pred != c))
        if tp + fp + fn > 0:
            ious.append(tp / (tp + fp + fn))
            dices.append(2 * tp / (2 * tp + fp + fn))
        p = tp / (tp + fp) if tp + fp > 0 else None
        r = tp / (tp + fn) if tp + fn > 0 else None
        if p is not None:
            precisions.append(p)
        if r is not None:
            recalls.append(r)
        if tp > 0:
            f1s.append(2 * p * r / (p + r))
        fw += (np.sum(gt == c) / gt.size) * (tp / (tp + fp + fn) if tp + fp + fn else 0)
    return {
        "mIoU": np.mean(ious),
        "Pixel_Accuracy": np.mean(gt == pred),
        "Mean_Accuracy": np.mean(recalls),
        "Frequency_Weighted_IoU": fw,
        "Mean_Dice": np.mean(dices),
        "Mean_Precision": np.mean(precisions),
        "Mean_Recall": np.mean(recalls),
        "Mean_F1": np.mean(f1s),
    }


@pytest.mark.parametrize("num_classes", [2, 5, 22])
def test_summary_matches_reference_on_random_label_maps(num_classes):
    rng = np.random.default_rng(num_classes)
    gt = rng.integers(0, num_classes, (64, 80))
    gt[rng.random(gt.shape) < 0.1] = 255
    pred = np.where(rng.random(gt.shape) < 0.6, np.where(gt == 255, 0, gt), rng.integers(0, num_classes, gt.shape))
    cm = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(gt), num_classes)
    ours = {k: float(v) for k, v in summary(cm).items()}
    ref = reference_metrics(gt, pred, num_classes)
    for key in METRIC_KEYS:
        assert ours[key] == pytest.approx(ref[key], abs=1e-9), key


def test_mean_f1_drops_classes_never_hit_while_mean_dice_counts_them_as_zero():
    gt = torch.tensor([0, 0, 1, 1, 2])
    pred = torch.tensor([0, 0, 1, 1, 0])  # class 2 present in GT but never predicted: tp = 0
    m = summary(confusion_matrix(pred, gt, 3))
    assert float(m["Mean_Dice"]) == pytest.approx((0.8 + 1.0 + 0.0) / 3)
    assert float(m["Mean_F1"]) == pytest.approx((0.8 + 1.0) / 2)


def test_confusion_matrix_drops_ignored_pixels():
    gt = torch.tensor([0, 1, 255, 255])
    pred = torch.tensor([0, 1, 1, 0])
    assert confusion_matrix(pred, gt, 2).tolist() == [[1, 0], [0, 1]]


def test_confusion_matrix_rejects_labels_outside_the_class_list():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 7]), 2)


def test_bootstrap_equals_a_loop_over_the_same_resamples():
    from densebench.metrics.bootstrap import resample_weights

    rng = np.random.default_rng(0)
    cms = torch.from_numpy(rng.integers(0, 50, (7, 3, 3)))
    weights = resample_weights(7, 40, seed=3)
    loop = [float(summary((w[:, None, None] * cms).sum(0))["Mean_Dice"]) for w in weights]
    got = bootstrap(cms, n_resamples=40, seed=3)["Mean_Dice"]
    assert got["mean"] == pytest.approx(np.mean(loop), abs=1e-12)
    assert got["ci_lower"] == pytest.approx(np.percentile(loop, 2.5), abs=1e-12)
    assert got["ci_upper"] == pytest.approx(np.percentile(loop, 97.5), abs=1e-12)


def test_resamples_draw_each_image_count_summing_to_n():
    from densebench.metrics.bootstrap import resample_weights

    w = resample_weights(11, 100, seed=0)
    assert w.shape == (100, 11) and bool((w.sum(1) == 11).all())


def test_bootstrap_is_deterministic_for_a_seed_and_brackets_its_mean():
    cms = torch.from_numpy(np.random.default_rng(1).integers(0, 30, (20, 4, 4)))
    a, b = bootstrap(cms, 200, seed=5), bootstrap(cms, 200, seed=5)
    assert a == b
    for v in a.values():
        assert v["ci_lower"] <= v["mean"] <= v["ci_upper"]
