"""GlaS object-level Hausdorff (and Dice edge cases) on shapes whose distances are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from densebench.metrics.instance import from_instances, image_stats
from tests.metrics.test_instance_scenes import metrics_of


def canvas(size: int = 40) -> np.ndarray:
    return np.zeros((size, size), np.int32)


def shifted_square(pred: np.ndarray) -> None:
    pred[5:16, 8:19] = 1  # the ground-truth square moved 3 px right


def square_with_hole(pred: np.ndarray) -> None:
    # The ground-truth square with a 5x5 hole: the hole's centre is 3 px from the ring, the ring lies
    # inside the square. Boundary-only distances would miss it (0).
    pred[5:16, 5:16] = 1
    pred[8:13, 8:13] = 0


@pytest.mark.parametrize("draw", [shifted_square, square_with_hole])
def test_object_hausdorff_of_one_pair_is_their_known_distance(draw):
    gt, pred = canvas(), canvas()
    gt[5:16, 5:16] = 1
    draw(pred)
    assert metrics_of(gt, pred)["Hausdorff_obj"] == pytest.approx(3.0)


def test_a_prediction_without_overlap_is_compared_with_the_nearest_ground_truth_object():
    gt, pred = canvas(), canvas()
    gt[0:10, 0:10] = 1
    pred[0:10, 0:10] = 1  # P1 = G1: distance 0
    pred[20:24, 20:24] = 2  # P2 overlaps nothing: its partner is G1, at sqrt(20^2 + 20^2) (corner (0,0) to (20,20))
    expected_pred_side = (100 * 0 + 16 * math.sqrt(800)) / (100 + 16)
    assert metrics_of(gt, pred)["Hausdorff_obj"] == pytest.approx(0.5 * (expected_pred_side + 0.0))


def test_the_nearest_object_is_chosen_by_hausdorff_distance_not_by_order():
    gt, pred = canvas(60), canvas(60)
    gt[0:4, 0:4] = 1
    pred[0:4, 40:44] = 1  # far (40 px)
    pred[0:4, 10:14] = 2  # near (10 px), higher id
    stats = image_stats(from_instances(gt, None, [1]), from_instances(pred, None, [1]), 1)
    # GT side: the lone GT object's partner is the 10-px prediction; weights are areas (16 each).
    assert stats["haus_gt"] / stats["haus_area_gt"] == pytest.approx(10.0)
    assert stats["haus_pred"] / stats["haus_area_pred"] == pytest.approx((40 + 10) / 2)


def test_hausdorff_is_undefined_when_the_other_side_has_no_object():
    gt, pred = canvas(), canvas()
    gt[0:5, 0:5] = 1
    stats = image_stats(from_instances(gt, None, [1]), from_instances(pred, None, [1]), 1)
    assert stats["haus_undefined"] == 1 and stats["haus_area_gt"] == 0
    m = metrics_of(gt, pred)
    assert math.isnan(m["Hausdorff_obj"])
    assert m["Dice_obj"] == 0.0  # GlaS: one side empty -> 0
