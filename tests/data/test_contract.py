"""The loader contract, checked for every dataset config in configs/dataset/ by one parametrised test.

A dataset config names a registered format, its classes with one RGB colour each (in every class mode),
an ignore label outside the class ids; its loader decodes a miniature release (tests/data fixtures) to
uint8 images and masks of the same size holding only class ids or the ignore label, and the split it
asks for covers every sample, keeps the official test set and never puts one patient group in two parts.
A new dataset config without a fixture fails here until it gets one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf

from densebench.config import compose, config_dir
from densebench.data import SOURCES, build_source
from densebench.data.splits import make_splits
from tests.data import fixtures_nuclei, fixtures_tissue

DATASETS = sorted(p.stem for p in (config_dir() / "dataset").glob("*.yaml"))
SYNTHETIC = ["dataset.n_train=4", "dataset.n_val=2", "dataset.n_test=2", "dataset.min_size=48", "dataset.max_size=64"]
# Miniature releases hold 3-12 images: shares large enough that every part gets at least one.
SHARES = ["dataset.val_fraction=0.5", "++dataset.fractions=[0.34,0.34,0.32]"]


def miniature(name: str, tmp_path: Path) -> list[str]:
    """Writes a miniature release of dataset `name` under tmp_path; returns the overrides that point at it."""
    if name == "synthetic":
        return SYNTHETIC  # generated in memory, no files
    if name in fixtures_nuclei.MAKERS:
        fixtures_nuclei.MAKERS[name](tmp_path)
        return [f"dataset.root={tmp_path}", *SHARES]
    root, _ = fixtures_tissue.make(name, tmp_path)
    return [f"dataset.root={root}", *SHARES]


def class_modes(cfg: DictConfig) -> list[DictConfig]:
    """The config as composed, then once per other class mode it declares."""
    modes = [m for m in (cfg.get("class_modes") or {}) if m != cfg.get("class_mode")]
    return [cfg, *(OmegaConf.merge(cfg, {"class_mode": m}) for m in modes)]


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_config_and_loader_keep_the_contract(name, tmp_path):
    cfg = compose([f"dataset={name}", *miniature(name, tmp_path)]).dataset
    assert cfg.name == name and cfg.format in SOURCES
    for variant in class_modes(cfg):
        source = build_source(variant)
        classes, ignore = list(source.classes), int(source.ignore_index)
        assert classes and len(set(classes)) == len(classes), variant.get("class_mode")
        colours = np.asarray(variant.colors) if variant.get("colors") else None
        if colours is not None:  # a format that reads its classes from the data may leave colours to the palette
            assert colours.shape == (len(classes), 3) and ((0 <= colours) & (colours <= 255)).all()
        assert 0 <= ignore <= 255 and ignore >= len(classes)

    source = build_source(cfg)
    samples = source.samples()
    assert samples and len({s.key for s in samples}) == len(samples)
    for sample in samples:
        record = source.load(sample)
        h, w = record.mask.shape
        assert record.image.dtype == np.uint8 and record.image.shape == (h, w, 3), sample.key
        assert record.mask.dtype == np.uint8, sample.key
        assert set(np.unique(record.mask)) <= {*range(source.num_classes), source.ignore_index}, sample.key
        if record.instances is not None:
            assert record.instances.shape == (h, w) and record.instances.dtype == np.int32, sample.key

    splits = make_splits(samples, cfg, seed=0)
    assert set(splits) == {"train", "val", "test"} and all(splits.values())
    assert sorted(s.key for part in splits.values() for s in part) == sorted(s.key for s in samples)
    released_test = {s.key for s in samples if s.split == "test"}
    if cfg.split == "official" and released_test:
        assert {s.key for s in splits["test"]} == released_test
    groups = [{s.group for s in part if s.group is not None} for part in splits.values()]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
