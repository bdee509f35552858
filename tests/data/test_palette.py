"""Class palettes keep a minimum perceptual distance (CIE76 ΔE in CIELAB) between every two classes: the
default palette (the folder dataset's, colors: null) for any class count, and every dataset config's."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from densebench.config import compose, config_dir
from densebench.data.palette import MIN_DELTA_E, default_palette, min_distance, palette


def test_min_distance_flags_two_near_identical_dark_colours() -> None:
    assert min_distance(np.array([[0, 0, 0], [20, 20, 24], [255, 0, 0]])) < MIN_DELTA_E


@pytest.mark.parametrize("n", [2, 3, 8, 16, 24, 40])
def test_the_default_palette_keeps_classes_apart(n: int) -> None:
    colours = default_palette(n)
    assert len(colours) == n and colours[0].tolist() == [0, 0, 0]
    assert min_distance(colours) >= MIN_DELTA_E


def test_the_folder_dataset_default_palette_keeps_classes_apart() -> None:
    cfg = compose(["dataset=folder", "dataset.classes=[background,tumour,stroma,necrosis,lymphocytes,other]"])
    assert cfg.dataset.colors is None  # the folder dataset relies on the default palette
    assert min_distance(palette(cfg.dataset, len(cfg.dataset.classes))) >= MIN_DELTA_E


@pytest.mark.parametrize("dataset", sorted(p.stem for p in (config_dir() / "dataset").glob("*.yaml")))
def test_every_dataset_config_palette_keeps_classes_apart(dataset: str) -> None:
    cfg = compose([f"dataset={dataset}"]).dataset
    colours = OmegaConf.to_container(cfg, resolve=True).get("colors")
    n = len(cfg.classes or []) or len(colours or []) or 8  # json_list: classes come from the data (say 8)
    assert min_distance(palette(OmegaConf.create({"colors": colours}), n)[:n]) >= MIN_DELTA_E
