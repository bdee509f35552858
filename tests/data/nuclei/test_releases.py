"""Each nuclei reader returns, for every image of a miniature original-layout release, the expected
image, class mask, instance map, official split tag and patient group."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from tests.data.checks import assert_reads_as_released
from tests.data.fixtures_nuclei import (
    MAKERS,
    build,
    make_conic,
    make_consep,
    make_cpm15_hovernet,
    make_cpm15_original,
    make_kumar_hovernet,
    make_kumar_monuseg,
    make_nucls,
    make_pannuke,
    make_tnbc,
    make_tnbc_hovernet,
)

RELEASES = [(name, name, make) for name, make in MAKERS.items()] + [
    ("kumar", "kumar-hovernet", make_kumar_hovernet),
    ("cpm15", "cpm15-hovernet", make_cpm15_hovernet),
    ("tnbc", "tnbc-hovernet", make_tnbc_hovernet),
]


@pytest.mark.parametrize("dataset,release,make", RELEASES, ids=[r[1] for r in RELEASES])
def test_reader_returns_the_release_as_drawn(tmp_path, dataset, release, make):
    expected = make(tmp_path)
    assert_reads_as_released(build(dataset, tmp_path), expected)


def test_monuseg_fixture_uses_the_release_compressions(tmp_path):
    make_kumar_monuseg(tmp_path)
    train = next(tmp_path.glob("MoNuSeg 2018 Training Data/Tissue Images/*.tif"))
    test = next(tmp_path.glob("MoNuSegTestData/*.tif"))
    with tifffile.TiffFile(train) as a, tifffile.TiffFile(test) as b:
        assert (a.pages[0].compression, b.pages[0].compression) == (5, 32773)  # LZW, PackBits


def test_monuseg_later_region_wins_where_outlines_overlap(tmp_path):
    expected = make_kumar_monuseg(tmp_path)
    source = build("kumar", tmp_path)
    sample = next(s for s in source.samples() if s.split == "train")
    got = source.load(sample).instances
    assert np.array_equal(got, expected[sample.key].instances)  # ids follow region order in the XML


def test_any_of_reports_which_release_it_read(tmp_path):
    make_cpm15_hovernet(tmp_path)
    source = build("cpm15", tmp_path)
    source.samples()
    assert source.release == "hovernet"


def test_consep_merged_mode_groups_epithelial_and_spindle_types(tmp_path):
    expected = make_consep(tmp_path)
    source = build("consep", tmp_path, class_mode="merged")
    sample = source.samples()[0]
    lut = np.array([0, 1, 2, 3, 3, 4, 4, 4], np.uint8)
    assert source.classes == ["background", "other", "inflammatory", "epithelial", "spindle"]
    assert np.array_equal(source.load(sample).mask, lut[expected[sample.key].mask])


def test_pannuke_paper_mode_puts_background_last(tmp_path):
    expected = make_pannuke(tmp_path)
    source = build("pannuke", tmp_path, class_mode="paper")
    sample = source.samples()[0]
    ours = expected[sample.key].mask
    assert source.classes[-1] == "background"
    assert np.array_equal(source.load(sample).mask, np.where(ours == 0, 5, ours - 1))


def test_pannuke_pixel_in_two_nucleus_channels_is_ignored(tmp_path):
    make_pannuke(tmp_path)
    path = tmp_path / "Fold 1" / "masks" / "fold1" / "masks.npy"
    masks = np.load(path)
    masks[0, 0, 0, :2] = (7, 9)
    np.save(path, masks)
    source = build("pannuke", tmp_path)
    assert source.load(source.samples()[0]).mask[0, 0] == 255


def test_pannuke_tissue_names_are_kept_as_sample_meta(tmp_path):
    make_pannuke(tmp_path)
    assert [s.meta["tissue"] for s in build("pannuke", tmp_path).samples()[:2]] == ["Breast", "Colon"]


def test_nucls_paper_mode_turns_outside_fov_and_unlabeled_into_background(tmp_path):
    expected = make_nucls(tmp_path)
    source = build("nucls", tmp_path, class_mode="paper")
    sample = source.samples()[0]
    ours = expected[sample.key].mask
    assert np.array_equal(source.load(sample).mask, np.where(ours == 255, 0, ours))


def test_nucls_official_split_follows_the_configured_fold(tmp_path):
    make_nucls(tmp_path)
    fold2 = build("nucls", tmp_path, **{"layout.fold": 2}).samples()
    assert {s.group for s in fold2 if s.split == "test"} == {"TCGA-A1-A0SP"}


def test_nucls_other_splits_do_not_need_the_fold_lists(tmp_path):
    make_nucls(tmp_path)
    for path in (tmp_path / "NuCLS_dataset" / "train_test_splits").iterdir():
        path.unlink()
    assert all(s.split is None for s in build("nucls", tmp_path, split="grouped").samples())


def test_release_found_one_folder_deeper_and_with_underscored_names(tmp_path):
    make_tnbc(tmp_path / "download" / "TNBC_NucleiSegmentation (1)")
    assert len(build("tnbc", tmp_path).samples()) == 6


def test_conic_groups_are_source_lizard_images(tmp_path):
    make_conic(tmp_path)
    groups = {s.key: s.group for s in build("conic2022", tmp_path).samples()}
    assert groups["consep_1-0000"] == groups["consep_1-0001"] == "consep_1"


def test_cpm15_original_is_read_row_major_on_non_square_tiles(tmp_path):
    expected = make_cpm15_original(tmp_path)
    source = build("cpm15", tmp_path)
    sample = source.samples()[0]
    assert source.load(sample).mask.shape == expected[sample.key].mask.shape != expected[sample.key].mask.shape[::-1]
