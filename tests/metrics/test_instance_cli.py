"""`densebench evaluate --instances` on small folders of instance files in every supported form."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from densebench.cli import main
from tests.metrics.test_instance_scenes import metrics_of, scene


def run_cli(*args):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--instances", *args])
    return exit_info.value.code


def folders(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    return gt, pred


def test_png_ground_truth_and_npy_predictions_score_like_the_api(tmp_path):
    gt_dir, pred_dir = folders(tmp_path)
    gt, pred = scene()
    Image.fromarray(gt.astype(np.uint16)).save(gt_dir / "tile1.png")  # 16-bit ids
    np.save(pred_dir / "tile1.npy", pred)
    out, per_image = tmp_path / "r.json", tmp_path / "per_image.csv"
    assert (
        run_cli(
            "--gt",
            str(gt_dir),
            "--pred",
            str(pred_dir),
            "--detection-radius",
            "3",
            "--n-bootstrap",
            "20",
            "--out",
            str(out),
            "--per-image",
            str(per_image),
        )
        == 0
    )
    result = json.loads(out.read_text())
    expected = metrics_of(gt, pred, radius=3)
    for key in ("PQ", "AJI", "AJI+", "Dice_obj", "F1_det"):
        assert result["metrics"][key] == pytest.approx(expected[key])
    assert result["eval_mode"] == "external" and result["objects"] == ["object"]
    (row,) = csv.DictReader(per_image.open())
    assert row["key"] == "tile1" and float(row["PQ"]) == pytest.approx(7 / 15)


def test_hovernet_mat_files_with_types_give_per_class_scores(tmp_path):
    gt_dir, pred_dir = folders(tmp_path)
    gt, pred = scene()
    gt_types = np.where(gt > 0, np.where(gt <= 2, 1, 2), 0)  # A, B1 -> type 1; B2, C, D -> type 2
    savemat(gt_dir / "img.mat", {"inst_map": gt, "type_map": gt_types})
    # HoVer-Net output: per-instance types aligned with inst_uid
    uids = np.array([7, 3, 9, 4, 1])
    savemat(
        pred_dir / "img.mat",
        {"inst_map": pred, "inst_uid": uids[:, None], "inst_type": np.array([[1], [1], [2], [2], [1]])},
    )
    out = tmp_path / "r.json"
    assert (
        run_cli(
            "--gt",
            str(gt_dir),
            "--pred",
            str(pred_dir),
            "--class-names",
            "background,tumour,other",
            "--n-bootstrap",
            "20",
            "--out",
            str(out),
        )
        == 0
    )
    per_class = json.loads(out.read_text())["per_class"]
    # tumour: A-PA and B1-P2 matched (both typed 1 on both sides); FP: P5; FN: none
    assert (per_class["tumour"]["TP"], per_class["tumour"]["FP"], per_class["tumour"]["FN"]) == (2, 1, 0)
    # other: C-P3 matched; FP: P4; FN: B2, D
    assert (per_class["other"]["TP"], per_class["other"]["FP"], per_class["other"]["FN"]) == (1, 1, 2)


def test_semantic_predictions_are_split_into_instances(tmp_path):
    gt_dir, pred_dir = folders(tmp_path)
    gt = np.zeros((30, 30), np.int32)
    gt[2:8, 2:8], gt[15:25, 15:25] = 1, 2
    np.save(gt_dir / "a.npy", gt)
    Image.fromarray((gt > 0).astype(np.uint8)).save(pred_dir / "a.png")  # class map, 1 = nucleus
    out = tmp_path / "r.json"
    assert (
        run_cli(
            "--gt",
            str(gt_dir),
            "--pred",
            str(pred_dir),
            "--pred-kind",
            "semantic",
            "--n-bootstrap",
            "20",
            "--out",
            str(out),
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["metrics"]["PQ"] == 1.0 and result["counts"]["TP"] == 2
    assert result["settings"]["pred_kind"] == "semantic"


def test_types_requested_but_missing_is_a_one_line_error(tmp_path, capsys):
    gt_dir, pred_dir = folders(tmp_path)
    gt, pred = scene()
    np.save(gt_dir / "t.npy", gt)
    np.save(pred_dir / "t.npy", pred)
    assert run_cli("--gt", str(gt_dir), "--pred", str(pred_dir), "--class-names", "background,nucleus") == 2
    err = capsys.readouterr().err
    assert "t.npy" in err and "types" in err


def test_a_prediction_of_another_size_is_refused(tmp_path, capsys):
    gt_dir, pred_dir = folders(tmp_path)
    np.save(gt_dir / "t.npy", np.zeros((10, 10), np.int32))
    np.save(pred_dir / "t.npy", np.zeros((10, 12), np.int32))
    assert run_cli("--gt", str(gt_dir), "--pred", str(pred_dir)) == 2
    assert "differs from ground truth" in capsys.readouterr().err
