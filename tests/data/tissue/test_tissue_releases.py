"""Each gland/tissue loader reads a miniature copy of its original release exactly as released."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from densebench.data.splits import make_splits
from tests.data.fixtures_tissue import make, make_folder
from tests.data.checks import assert_reads_as_released
from tests.data.tissue.helpers import source

NAMES = ["glas", "crag", "rings", "bcss", "cosas24", "ebhi", "wsss4luad", "janowczyk", "cocahis", "folder", "json_list"]


@pytest.mark.parametrize("name", NAMES)
def test_loader_returns_the_released_image_mask_and_instances(name, tmp_path):
    root, expected = make(name, tmp_path)
    assert_reads_as_released(source(name, root), expected)


# Split coverage, the official test set and patient groups of every dataset: tests/data/test_contract.py.


def test_bcss_scores_outside_roi_only_in_paper_mode(tmp_path):
    root, expected = make("bcss", tmp_path)
    default, paper = source("bcss", root), source("bcss", root, "dataset.class_mode=paper")
    sample = default.samples()[0]
    m_default, m_paper = default.load(sample).mask, paper.load(sample).mask
    assert ((m_default == 255) == (m_paper == 0)).all() and (m_paper == 0).any()
    np.testing.assert_array_equal(m_default, expected[sample.key].mask)


def test_wsss4luad_reads_classes_by_palette_colour_and_ignores_background_by_default(tmp_path):
    root, expected = make("wsss4luad", tmp_path)
    default, paper = source("wsss4luad", root), source("wsss4luad", root, "dataset.class_mode=paper")
    sample = next(s for s in default.samples() if s.key == "validation_02")  # the reordered palette
    m_default, m_paper = default.load(sample).mask, paper.load(sample).mask
    np.testing.assert_array_equal(m_default, expected["validation_02"].mask)
    np.testing.assert_array_equal(m_paper == 0, m_default == 255)


def test_ebhi_image_without_label_is_left_out_and_reported(tmp_path, caplog):
    root, expected = make("ebhi", tmp_path)
    src = source("ebhi", root)
    with caplog.at_level(logging.WARNING):
        keys = {s.key for s in src.samples()}
    assert keys == set(expected)
    assert src.excluded == [("EBHI-SEG/Low-grade IN/image/GT2012149-2-400-001.png", "no label file for this image")]
    assert "GT2012149-2-400-001.png" in caplog.text


def test_rings_image_without_tumour_file_has_no_tumour_and_one_without_glands_is_reported(tmp_path, caplog):
    root, expected = make("rings", tmp_path)
    src = source("rings", root)
    with caplog.at_level(logging.INFO):
        samples = {s.key: s for s in src.samples()}
    assert not (src.load(samples["P2_D7_4_17_2"]).mask == 2).any()
    assert [f for f, _ in src.excluded] == ["RINGS_algorithm_dataset/TRAIN/IMAGES/P9_no_mask.png"]
    assert "1 of 8 images have no MANUAL TUMOR file" in caplog.text


def test_glas_patients_come_from_grade_csv(tmp_path):
    root, _ = make("glas", tmp_path)
    groups = {s.key: s.group for s in source("glas", root).samples()}
    assert groups["testA_1"] == groups["testB_1"] == "16" and groups["train_1"] == "10"


def test_json_list_takes_class_count_from_the_json(tmp_path):
    root, _ = make("json_list", tmp_path)
    assert source("json_list", root).classes == ["class_0", "class_1", "class_2"]
    assert source("json_list", root, "dataset.classes=[bg,a,b]").classes == ["bg", "a", "b"]


def test_folder_train_val_test_subfolders_become_the_official_split(tmp_path):
    expected = make_folder(tmp_path, splits=True)
    src = source("folder", tmp_path, "dataset.split=official")
    samples = src.samples()
    assert {s.key: s.split for s in samples} == {k: e.split for k, e in expected.items()}
    splits = make_splits(samples, src.cfg, seed=0)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [5, 1, 2]
