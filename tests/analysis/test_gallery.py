"""Every run's test step writes a gallery: image | ground truth | prediction for a seeded choice of test images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from densebench.data.palette import colourize
from densebench.engine.gallery import PANELS
from densebench.data.select import select_indices


@pytest.fixture(scope="module")
def gallery(runs):
    run = runs("frozen")
    run.test()
    return run, run.dir / "gallery"


def test_a_runs_test_step_writes_the_configured_number_of_gallery_images(gallery) -> None:
    run, folder = gallery
    index = json.loads((folder / "index.json").read_text())
    n = min(run.cfg.eval.gallery.n, len(run.data.splits["test"]))
    assert len(index["images"]) == n == len(list(folder.glob("??_*[0-9].jpg")))
    assert index["classes"] == ["stroma", "nucleus", "lumen"] and len(index["colors"]) == 3


def test_each_gallery_image_has_three_panels_side_by_side(gallery) -> None:
    run, folder = gallery
    side = run.cfg.eval.gallery.side
    for entry in json.loads((folder / "index.json").read_text())["images"]:
        assert set(entry["panels"]) == set(PANELS)
        sizes = {Image.open(folder / f).size for f in entry["panels"].values()}
        assert len(sizes) == 1
        ((width, height),) = sizes
        assert max(width, height) == side
        composite = Image.open(folder / entry["file"])
        assert composite.width == len(PANELS) * (width + 6) + 6  # three panels and their gaps
        assert 0 <= entry["Mean_Dice"] <= 1


def test_gallery_shows_the_same_images_whatever_the_model() -> None:
    keys = [f"img{i:02d}" for i in range(20)]
    chosen = [keys[i] for i in select_indices(keys, 4, seed=0)]
    shuffled = keys[::-1]
    assert [shuffled[i] for i in select_indices(shuffled, 4, seed=0)] == chosen
    assert chosen == sorted(chosen) and len(set(chosen)) == 4


def test_overlay_tints_classes_darkens_ignored_pixels_and_draws_borders() -> None:
    image = np.full((4, 4, 3), 200, np.uint8)
    labels = np.array([[0, 0, 1, 1]] * 3 + [[255, 255, 255, 255]], np.uint8)
    colours = np.array([[0, 0, 0], [255, 0, 0]], np.uint8)  # class 0 black: background, left untinted
    out = colourize(image, labels, colours, 255)
    assert out[0, 0].tolist() == [200, 200, 200]
    assert out[0, 3].tolist() == [227, 100, 100]
    assert out[0, 1].tolist() == [20, 20, 20]  # border between class 0 and class 1
    assert out[3, 0].tolist() == [60, 60, 60]


def test_gallery_n_zero_writes_no_gallery(tmp_path) -> None:
    from tests.analysis.conftest import make_run

    run = make_run(tmp_path, "frozen", "eval.gallery.n=0")
    run.test()
    assert not (run.dir / "gallery").exists()
