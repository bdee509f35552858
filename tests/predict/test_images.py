"""`densebench predict` on plain images: outputs per image, the run's own test prediction, no overwrite."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from densebench.data.formats.synthetic import render
from densebench.errors import DataError
from densebench.predict.cli import main as predict

SIZES = [(40, 50), (96, 96), (130, 210)]  # smaller than, equal to, larger than several windows (48 px)
NAMES = ["img0.png", "img1.jpg", "img2.tif"]  # PNG, JPEG, (striped) TIFF


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, (h, w) in enumerate(SIZES):
        Image.fromarray(render(7, i, (max(h, w), max(h, w))).image[:h, :w]).save(folder / NAMES[i])
    return folder


def test_a_folder_of_images_of_several_sizes_gives_a_palette_label_png_per_stem(trained_run, image_folder, tmp_path):
    out = tmp_path / "out"
    assert predict([str(trained_run), "--input", str(image_folder), "--out", str(out), "--progress", "none"]) == 0
    colours = np.asarray(OmegaConf.load(trained_run / "config.yaml").dataset.colors, np.uint8)
    for i, (h, w) in enumerate(SIZES):
        label = Image.open(out / f"img{i}.png")
        assert label.mode == "P" and label.size == (w, h)
        assert np.array_equal(np.asarray(label.getpalette(), np.uint8).reshape(-1, 3)[:3], colours)
        assert np.asarray(label).max() < 3


def test_probabilities_and_overlay_are_written_on_request(trained_run, image_folder, tmp_path):
    out = tmp_path / "out"
    predict(
        [
            str(trained_run),
            "--input",
            str(image_folder / "img2.tif"),
            "--out",
            str(out),
            "--probabilities",
            "--overlay",
            "--progress",
            "none",
        ]
    )
    with np.load(out / "img2.probs.npz") as z:
        probs, classes = z["probs"], list(z["classes"])
    assert probs.shape == (3, 130, 210) and classes == ["stroma", "nucleus", "lumen"]
    np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=5e-3)
    agree = probs.argmax(0) == np.asarray(Image.open(out / "img2.png"))  # float16 ties aside
    assert agree.mean() > 0.99
    assert Image.open(out / "img2.overlay.jpg").size == (210, 130)


def test_areas_csv_counts_every_pixel_of_every_image(trained_run, image_folder, tmp_path):
    out = tmp_path / "out"
    predict([str(trained_run), "--input", str(image_folder), "--out", str(out), "--progress", "none", "--mpp", "0.5"])
    rows = list(csv.DictReader((out / "areas.csv").open()))
    assert len(rows) == 3 * len(SIZES)
    for i, (h, w) in enumerate(SIZES):
        mine = [r for r in rows if r["input"] == NAMES[i]]
        label = np.asarray(Image.open(out / f"img{i}.png"))
        assert [int(r["pixels"]) for r in mine] == np.bincount(label.ravel(), minlength=3).tolist()
        assert sum(float(r["area_mm2"]) for r in mine) == pytest.approx(h * w * 0.25 / 1e6, rel=1e-3)


def test_existing_outputs_are_not_overwritten_without_force(trained_run, image_folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "img1.png").write_bytes(b"keep me")
    with pytest.raises(DataError, match="img1.png exists.*--force"):
        predict([str(trained_run), "--input", str(image_folder), "--out", str(out), "--progress", "none"])
    assert (out / "img1.png").read_bytes() == b"keep me"
    predict([str(trained_run), "--input", str(image_folder), "--out", str(out), "--progress", "none", "--force"])
    assert Image.open(out / "img1.png").size == (96, 96)


def test_eval_settings_can_be_overridden(trained_run, image_folder, tmp_path):
    from densebench.predict.trained import load_run

    run = load_run(trained_run, ["eval.overlap=0.5", "eval.blend=uniform"])
    assert (run.predictor.overlap, run.predictor.blend) == (0.5, "uniform")


def test_predict_on_a_test_image_equals_the_runs_own_test_prediction(trained_run, tmp_path):
    """Rebuild the run as training does (engine.train.Run), record its test predictions, then predict the
    same test images saved as PNG: every pixel must agree."""
    from densebench.engine import checkpoint
    from densebench.engine.train import Run

    cfg = OmegaConf.load(trained_run / "config.yaml")
    run = Run(cfg, [])
    run.dir = tmp_path / "rebuilt"  # Run.build writes splits.json there, not into the trained run
    run.build()
    run.model.load_trainable_state_dict(checkpoint.load(trained_run / "checkpoints" / "best.pt")["model"])
    preds: list[torch.Tensor] = []
    run.evaluate("test", on_prediction=lambda pred, target, inst: preds.append(pred.cpu()))
    images = tmp_path / "test_images"
    images.mkdir()
    for i in range(len(preds)):
        Image.fromarray(run.eval_sets["test"][i]["image"].numpy().transpose(1, 2, 0)).save(images / f"t{i}.png")
    out = tmp_path / "out"
    predict([str(trained_run), "--input", str(images), "--out", str(out), "--progress", "none"])
    assert len(preds) == 3
    for i, pred in enumerate(preds):
        assert np.array_equal(np.asarray(Image.open(out / f"t{i}.png")), pred.numpy())
