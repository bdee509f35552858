"""Genuine files from the releases (../shared/samples, see its SOURCES.md) decode to the stated facts."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from densebench.data.formats.ascii_mask import read_ascii_mask
from densebench.data.formats.monuseg import read_regions
from tests.data.fixtures_nuclei import SHARED, build, dataset_cfg

SAMPLES = SHARED / "samples"


@pytest.fixture(autouse=True)
def _need_samples():
    if not SAMPLES.is_dir():
        pytest.skip(f"../shared/samples not present: {SAMPLES} (genuine release files are not part of the repo)")


def test_monuseg_xml_has_359_regions_with_vertices_slightly_outside_the_tile():
    regions = read_regions(SAMPLES / "MoNuSeg/MoNuSegTrainingData/Annotations/TCGA-B0-5710-01Z-00-DX1.xml")
    vertices = np.concatenate(regions)
    assert len(regions) == 359 and len(vertices) == 30069
    assert vertices.min() < 0 and vertices.max() > 999


def test_kumar_reads_the_genuine_monuseg_tile_and_its_polygons():
    source = build("kumar", SAMPLES / "MoNuSeg")
    (sample,) = source.samples()
    assert (sample.key, sample.split, sample.group) == ("TCGA-B0-5710-01Z-00-DX1", "train", "TCGA-B0-5710")
    record = source.load(sample)
    assert record.image.shape == (1000, 1000, 3) and record.image.dtype == np.uint8  # LZW-compressed RGB
    assert len(np.unique(record.instances)) - 1 == 359
    grey = record.image.mean(axis=2)
    assert grey[record.mask == 1].mean() < grey[record.mask == 0].mean() - 50  # outlines sit on dark nuclei


def test_cpm15_ascii_mask_header_and_nuclei():
    assert (SAMPLES / "CPM-15/image06_mask.txt").read_text().split("\n", 1)[0].split() == ["459", "392"]
    labels = read_ascii_mask(SAMPLES / "CPM-15/image06_mask.txt")
    assert labels.shape == (392, 459) and labels.max() == 255 and len(np.unique(labels)) == 256
    assert Image.open(SAMPLES / "CPM-15/image06.png").mode == "RGBA"


def test_cpm15_reads_the_genuine_rgba_tile_row_major():
    source = build("cpm15", SAMPLES / "CPM-15")
    (sample,) = source.samples()
    record = source.load(sample)
    assert sample.key == "image06" and record.image.shape == (392, 459, 3)
    grey = record.image.mean(axis=2)
    assert grey[record.mask == 1].mean() < grey[record.mask == 0].mean() - 50


def test_nucls_code_table_is_covered_by_both_class_modes():
    with open(SAMPLES / "NuCLS/nucleus_GTcodes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    release = {int(r["GT_code"]) for r in rows} | {0}  # 0 = outside every FOV
    for mode in ("default", "paper"):
        cfg = dataset_cfg("nucls", class_mode=mode)
        assert set(map(int, cfg.codes)) == release, mode
    default = dataset_cfg("nucls")
    named = {int(r["GT_code"]): r["group"] for r in rows if int(r["GT_code"]) not in (99, 253)}
    assert all(default.classes[default.codes[code]] == name for code, name in named.items())
    assert default.codes[0] == default.codes[99] == 255 and default.codes[253] == 0


def test_nucls_fold_list_names_slides():
    rows = build("nucls").read_split_csv(SAMPLES / "NuCLS/train_test_splits/fold_1_test.csv", ("slide_name",))
    names = [row["slide_name"] for row in rows]
    assert names and all(n.startswith("TCGA-") and n.endswith("-DX1") for n in names)


def test_pannuke_types_hold_the_fold_sizes():
    fold3 = np.load(SAMPLES / "PanNuke/types/split1/types.npy")
    fold1 = np.load(SAMPLES / "PanNuke/types/split3/types.npy")
    assert fold3.shape == (2722,) and fold1.shape == (2656,)
    assert len(np.unique(np.concatenate([fold1, fold3]))) == 19


def test_conic_counts_columns_are_the_config_classes_in_order():
    with open(SAMPLES / "CoNIC2022/counts.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) - 1 == 4981
    assert rows[0] == list(dataset_cfg("conic2022").classes)[1:]
    assert rows[1] == ["0", "117", "0", "0", "0", "0"]
