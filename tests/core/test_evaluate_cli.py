"""`densebench evaluate` scores label PNG folders with the same metrics as a run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from densebench.cli import main
from tests.core.test_metrics import reference_metrics


def write_pairs(tmp_path, n=4, classes=3, palette=False):
    rng = np.random.default_rng(0)
    gts, preds = [], []
    for i in range(n):
        gt = rng.integers(0, classes, (30, 40)).astype(np.uint8)
        gt[:3] = 255
        pred = np.where(
            rng.random(gt.shape) < 0.7, np.where(gt == 255, 0, gt), rng.integers(0, classes, gt.shape)
        ).astype(np.uint8)
        for folder, arr in (("gt", gt), ("pred", pred)):
            (tmp_path / folder).mkdir(exist_ok=True)
            img = Image.fromarray(arr, mode="L")
            if palette and folder == "gt":
                img = img.convert("P")  # palette indices must be read as values, not luminance
                img.putpalette([0, 0, 0, 200, 10, 10, 10, 200, 10] + [255] * (256 * 3 - 9))
            img.save(tmp_path / folder / f"img{i}.png")
        gts.append(gt)
        preds.append(pred)
    return np.stack(gts), np.stack(preds)


def run_cli(*args):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", *args])
    return exit_info.value.code


@pytest.mark.parametrize("palette", [False, True])
def test_evaluate_matches_an_independent_computation(tmp_path, palette):
    gt, pred = write_pairs(tmp_path, palette=palette)
    out = tmp_path / "result.json"
    assert (
        run_cli(
            "--pred",
            str(tmp_path / "pred"),
            "--gt",
            str(tmp_path / "gt"),
            "--num-classes",
            "3",
            "--n-bootstrap",
            "100",
            "--out",
            str(out),
        )
        == 0
    )
    result = json.loads(out.read_text())
    ref = reference_metrics(gt.reshape(-1), pred.reshape(-1), 3)
    for key, value in ref.items():
        assert result["metrics"][key] == pytest.approx(value, abs=1e-9)
    assert result["n_images"] == 4 and set(result["per_class"]) == {"class_0", "class_1", "class_2"}
    assert (
        result["bootstrap"]["metrics"]["Mean_Dice"]["ci_lower"]
        <= result["bootstrap"]["metrics"]["Mean_Dice"]["ci_upper"]
    )


def test_evaluate_refuses_ground_truth_without_a_prediction(tmp_path, capsys):
    write_pairs(tmp_path)
    (tmp_path / "pred" / "img0.png").unlink()
    assert run_cli("--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--num-classes", "3") == 2
    assert "img0" in capsys.readouterr().err


def test_evaluate_reports_labels_outside_num_classes(tmp_path, capsys):
    write_pairs(tmp_path, classes=3)
    assert run_cli("--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--num-classes", "2") == 2
    assert "--num-classes" in capsys.readouterr().err
