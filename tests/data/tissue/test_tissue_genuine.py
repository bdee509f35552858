"""The loaders on genuine release files (../shared/samples, see its SOURCES.md), checked against stated facts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densebench.data.cli import main
from densebench.data.io import read_image, read_label, read_table
from tests.data.fixtures_tissue import save
from tests.data.tissue.helpers import SHARED, source

SAMPLES = SHARED / "samples"


def sample_dir(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_dir():
        pytest.skip(f"../shared/samples not present: {path} (genuine release files are only in the project workspace)")
    return path


def test_wsss4luad_palette_mask_decodes_by_colour_and_background_mask_is_the_ignored_part():
    root = sample_dir("WSSS4LUAD")
    src = source("wsss4luad", root)
    [sample] = src.samples()  # 1.training_examples holds image-level labels only and is not read
    assert sample.key == "validation_00" and sample.split == "val"
    raw = read_label(sample.paths[1])
    assert set(np.unique(raw)) == {0, 1, 3}  # palette indices: tumor, stroma, background
    record = src.load(sample)
    assert record.image.shape == (273, 266, 3)
    background = read_label(root / "2.validation" / "2.validation" / "background-mask" / "00.png") == 1
    np.testing.assert_array_equal(record.mask == 255, background)
    np.testing.assert_array_equal(record.mask[~background], (raw + 1)[~background])
    paper = source("wsss4luad", root, "dataset.class_mode=paper").load(sample).mask
    np.testing.assert_array_equal(paper == 0, background)


def test_ebhi_labels_are_thresholded_into_their_category_and_the_orphan_is_reported():
    root = sample_dir("EBHI-Seg")
    src = source("ebhi", root)
    samples = {s.key: s for s in src.samples()}
    assert sorted(samples) == ["Adenocarcinoma/GT2001837-1-400-001", "Normal/GT2000000-1-400-001"]
    assert src.excluded == [("EBHI-SEG/Low-grade IN/image/GT2012149-2-400-001.png", "no label file for this image")]
    for key, cls in (("Adenocarcinoma/GT2001837-1-400-001", 1), ("Normal/GT2000000-1-400-001", 4)):
        label = read_label(samples[key].paths[1])
        assert len(np.unique(label)) > 250  # anti-aliased greys, as SOURCES.md states
        mask = src.load(samples[key]).mask
        assert set(np.unique(mask)) == {0, cls}
        np.testing.assert_array_equal(mask == cls, label > 127)


def test_ebhi_check_fails_naming_the_image_without_label(capsys):
    root = sample_dir("EBHI-Seg")
    assert main(["check", "dataset=ebhi", f"dataset.root={root}"]) == 1
    assert "Low-grade IN/image/GT2012149-2-400-001.png" in capsys.readouterr().out


def test_bcss_code_table_crlf_tsv_agrees_with_the_config(tmp_path):
    meta = sample_dir("BCSS") / "meta"
    assert b"\r\n" in (meta / "gtruth_codes.tsv").read_bytes()
    rows = read_table(meta / "gtruth_codes.tsv")
    assert [int(r["GT_code"]) for r in rows] == list(range(22))
    # a release copy holding the genuine table: the loader's table check accepts it
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "gtruth_codes.tsv").symlink_to(meta / "gtruth_codes.tsv")
    name = "TCGA-A1-A0SK-DX1_xmin45749_ymin25055_MPP-0.2500"
    save(tmp_path / "images" / f"{name}.png", np.zeros((8, 8, 3), np.uint8))
    codes = np.arange(64, dtype=np.uint8).reshape(8, 8) % 22
    save(tmp_path / "masks" / f"{name}.png", codes)
    src = source("bcss", tmp_path)
    assert src.classes == [r["label"] for r in rows]
    np.testing.assert_array_equal(src.load(src.samples()[0]).mask, np.where(codes == 0, 255, codes))


def test_bcss_official_test_institutes_hold_45_of_the_151_rois(tmp_path):
    meta = sample_dir("BCSS") / "meta"
    with (meta / "roiBounds.csv").open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    for slide, xmin, ymin, *_ in rows:  # empty images named as the release names them
        name = f"{slide}_xmin{xmin}_ymin{ymin}_MPP-0.2500.png"
        save(tmp_path / "images" / name, np.zeros((2, 2, 3), np.uint8))
        save(tmp_path / "masks" / name, np.zeros((2, 2), np.uint8))
    samples = source("bcss", tmp_path).samples()
    assert len(samples) == 151
    assert sum(s.split == "test" for s in samples) == 45  # institutes OL, LL, E2, EW, GM, S3


def test_cosas24_genuine_image_decodes_at_its_full_size(tmp_path):
    image = sample_dir("COSAS24") / "data" / "1ffea5df80b4.png"
    assert read_image(image).shape == (1346, 1353, 3)
    # placed in the training-release layout with a 0/255 mask, the loader reads it whole
    (tmp_path / "task1" / "pancreas" / "image").mkdir(parents=True)
    (tmp_path / "task1" / "pancreas" / "image" / image.name).symlink_to(image)
    fg = np.zeros((1346, 1353), np.uint8)
    fg[100:400, 200:900] = 255
    save(tmp_path / "task1" / "pancreas" / "mask" / image.name, fg)
    src = source("cosas24", tmp_path)
    [sample] = src.samples()
    record = src.load(sample)
    assert sample.key == "task1_pancreas_1ffea5df80b4"
    assert record.image.dtype == np.uint8 and record.mask.shape == (1346, 1353)
    assert int(record.mask.sum()) == 300 * 700
    assert np.array_equal(record.image, np.asarray(Image.open(image).convert("RGB")))
