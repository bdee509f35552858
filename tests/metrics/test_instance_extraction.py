"""Objects from semantic predictions and ground-truth instance maps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from densebench.errors import ConfigError
from densebench.metrics.instance import InstanceScorer, InstanceSettings, extract, ground_truth, object_classes
from densebench.metrics.instance.objects import relabel


def two_touching_disks() -> np.ndarray:
    sem = np.zeros((40, 60), np.uint8)
    cv2.circle(sem, (20, 20), 10, 1, -1)
    cv2.circle(sem, (38, 20), 10, 1, -1)  # overlaps the first: one connected blob
    return sem


def test_components_keep_touching_objects_together_and_watershed_splits_them():
    sem = two_touching_disks()
    assert extract(sem, [1], "components").n == 1
    split = extract(sem, [1], "watershed", watershed_h=2.0)
    assert split.n == 2
    assert (split.inst > 0).sum() == (sem > 0).sum()  # every predicted pixel stays in an object


def test_watershed_keeps_objects_too_thin_for_a_marker():
    sem = np.zeros((10, 30), np.uint8)
    sem[4, 2:25] = 1  # a 1-px line: distance maxima of height 1 < h
    objs = extract(sem, [1], "watershed", watershed_h=2.0)
    assert objs.n == 1 and (objs.inst > 0).sum() == 23


def test_objects_under_min_size_are_dropped():
    sem = np.zeros((20, 20), np.uint8)
    sem[0:3, 0:3] = 1  # 9 px
    sem[10:14, 10:14] = 1  # 16 px
    objs = extract(sem, [1], min_size=10)
    assert objs.n == 1 and (objs.inst > 0).sum() == 16


def test_union_extraction_types_objects_by_majority_and_per_class_extraction_splits_them():
    sem = np.zeros((10, 20), np.uint8)
    sem[2:8, 2:12] = 1
    sem[2:8, 10:12] = 2  # a sliver of class 2 inside the class-1 object
    union = extract(sem, [1, 2], per_class=False, min_size=0)
    assert union.n == 1 and union.classes.tolist() == [0]
    per_class = extract(sem, [1, 2], per_class=True, min_size=0)
    assert per_class.n == 2 and sorted(per_class.classes.tolist()) == [0, 1]


def test_connectivity_decides_whether_diagonal_pixels_join():
    sem = np.zeros((4, 4), np.uint8)
    sem[0, 0] = sem[1, 1] = 1
    assert extract(sem, [1], connectivity=4).n == 2
    assert extract(sem, [1], connectivity=8).n == 1


def test_ground_truth_drops_instances_of_classes_not_scored_and_ignored_pixels():
    inst = np.zeros((10, 10), np.int32)
    mask = np.zeros((10, 10), np.uint8)
    inst[0:3, 0:3], mask[0:3, 0:3] = 5, 1  # nucleus
    inst[5:8, 5:8], mask[5:8, 5:8] = 9, 2  # lumen: not an object class here
    inst[0:2, 6:9], mask[0:2, 6:9] = 11, 255  # entirely ignored
    objs = ground_truth(inst, mask, [1], valid=mask != 255)
    assert objs.n == 1 and objs.classes.tolist() == [0]
    assert set(np.unique(objs.inst)) == {0, 1}


def test_relabel_makes_ids_contiguous_in_order_even_for_huge_ids():
    inst = np.array([[0, 7, 7], [2**30, 0, 3]], np.int64)
    out, n = relabel(inst)
    assert n == 3 and out.tolist() == [[0, 2, 2], [3, 0, 1]]


def test_default_object_classes_are_all_but_background_wherever_it_sits():
    assert object_classes(["background", "a", "b"], None) == [1, 2]
    assert object_classes(["a", "b", "background"], None) == [0, 1]  # PanNuke paper mode
    assert object_classes(["stroma", "nucleus", "lumen"], None) == [1, 2]  # no background: class 0
    assert object_classes(["stroma", "nucleus", "lumen"], ["nucleus"]) == [1]
    with pytest.raises(ConfigError, match="nuclei"):
        object_classes(["background", "nucleus"], ["nuclei"])


def test_settings_refuse_a_matching_threshold_that_breaks_uniqueness():
    with pytest.raises(ConfigError, match="match_iou"):
        InstanceSettings(match_iou=0.3)
    with pytest.raises(ConfigError, match="method"):
        InstanceSettings.from_config({"method": "hovernet"})


def test_scorer_removes_ignored_pixels_from_both_sides():
    mask = np.zeros((10, 10), np.int64)
    inst = np.zeros((10, 10), np.int32)
    mask[0:4, 0:4], inst[0:4, 0:4] = 1, 1
    mask[:, 8:] = 255  # ignored band
    pred = np.zeros((10, 10), np.int64)
    pred[0:4, 0:4] = 1
    pred[5:9, 8:10] = 1  # a predicted object entirely inside the ignored band
    scorer = InstanceScorer(["background", "nucleus"], [1], InstanceSettings(min_size=0))
    scorer.add_semantic(pred, mask, inst)
    row = scorer.rows[0]
    assert row["n_pred"] == 1 and row["tp"] == 1
