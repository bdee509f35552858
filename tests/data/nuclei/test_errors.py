"""Broken or incomplete releases fail with one clear message naming the file; nothing is dropped."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import scipy.io

from densebench.errors import ConfigError, DataError
from tests.data.fixtures_nuclei import (
    MAKERS,
    build,
    make_consep,
    make_cpm15_hovernet,
    make_cpm15_original,
    make_lizard,
    make_nucls,
    make_pannuke,
)


def _load_all(source):
    for sample in source.samples():
        source.load(sample)


def test_missing_root_asks_for_dataset_root():
    with pytest.raises(DataError, match=r"needs dataset.root=PATH"):
        build("consep", None).samples()


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_empty_root_says_what_was_expected(tmp_path, name):
    with pytest.raises(DataError, match=rf"dataset '{name}'.*{tmp_path}"):
        build(name, tmp_path).samples()


def test_image_without_label_names_the_image(tmp_path):
    make_consep(tmp_path)
    (tmp_path / "CoNSeP" / "Test" / "Labels" / "test_2.mat").unlink()
    with pytest.raises(DataError, match=r"1 image\(s\) have no \.mat label, e\.g\. .*test_2\.png"):
        build("consep", tmp_path).samples()


def test_label_without_image_names_the_label(tmp_path):
    make_consep(tmp_path)
    (tmp_path / "CoNSeP" / "Train" / "Images" / "train_3.png").unlink()
    with pytest.raises(DataError, match=r"have no image, e\.g\. .*train_3\.mat"):
        build("consep", tmp_path).samples()


def test_second_copy_of_the_release_is_an_error(tmp_path):
    make_consep(tmp_path)
    shutil.copytree(tmp_path / "CoNSeP", tmp_path / "copy" / "CoNSeP")
    with pytest.raises(
        DataError,
        match=r"two files for test_1: .*CoNSeP/Test/Images/test_1.png and .*copy/CoNSeP/Test/Images/test_1.png; remove one copy",
    ):
        build("consep", tmp_path).samples()


def test_truncated_image_names_the_file(tmp_path):
    make_consep(tmp_path)
    path = tmp_path / "CoNSeP" / "Train" / "Images" / "train_1.png"
    path.write_bytes(path.read_bytes()[:200])
    source = build("consep", tmp_path)
    with pytest.raises(DataError, match=r"train_1\.png: cannot decode .*truncated"):
        _load_all(source)


def test_label_of_another_size_names_the_label(tmp_path):
    make_consep(tmp_path)
    path = tmp_path / "CoNSeP" / "Train" / "Labels" / "train_2.mat"
    scipy.io.savemat(path, {"inst_map": np.zeros((10, 12)), "type_map": np.zeros((10, 12))})
    with pytest.raises(DataError, match=r"train_2\.mat: label size \(12, 10\) differs from image size \(80, 72\)"):
        _load_all(build("consep", tmp_path))


def test_code_outside_the_class_table_is_an_error_not_background(tmp_path):
    make_consep(tmp_path)
    path = tmp_path / "CoNSeP" / "Test" / "Labels" / "test_1.mat"
    mat = scipy.io.loadmat(path)
    mat["type_map"][0, 0] = 9
    scipy.io.savemat(path, {k: v for k, v in mat.items() if not k.startswith("__")})
    with pytest.raises(DataError, match=r"test_1\.mat: label codes \[9\] have no class"):
        _load_all(build("consep", tmp_path))


def test_truncated_ascii_mask_names_the_file(tmp_path):
    make_cpm15_original(tmp_path)
    path = next(tmp_path.rglob("image02_mask.txt"))
    path.write_text("\n".join(path.read_text().splitlines()[:-50]))
    with pytest.raises(DataError, match=r"image02_mask\.txt: header says 70x62 = 4340 labels but the file holds 4290"):
        _load_all(build("cpm15", tmp_path))


def test_truncated_npy_stack_names_the_file(tmp_path):
    make_pannuke(tmp_path)
    path = tmp_path / "Fold 2" / "masks" / "fold2" / "masks.npy"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"fold2/masks\.npy: cannot memory-map"):
        build("pannuke", tmp_path).samples()


def test_pannuke_masks_with_fewer_patches_than_images(tmp_path):
    make_pannuke(tmp_path)
    path = tmp_path / "Fold 3" / "masks" / "fold3" / "masks.npy"
    np.save(path, np.load(path)[:1])
    with pytest.raises(DataError, match=r"fold3/masks\.npy: holds 1 patches but its images\.npy holds 2"):
        build("pannuke", tmp_path).samples()


def test_lizard_instance_without_class_entry(tmp_path):
    make_lizard(tmp_path)
    path = next(tmp_path.rglob("Labels/crag_2.mat"))
    mat = scipy.io.loadmat(path)
    keep = mat["id"].ravel() != 3
    scipy.io.savemat(path, {"inst_map": mat["inst_map"], "id": mat["id"][keep], "class": mat["class"][keep]})
    with pytest.raises(DataError, match=r"crag_2\.mat: instance ids \[3\] in inst_map have no entry"):
        _load_all(build("lizard", tmp_path))


def test_lizard_image_missing_from_info_csv(tmp_path):
    make_lizard(tmp_path)
    path = next(tmp_path.rglob("info.csv"))
    path.write_text("\n".join(line for line in path.read_text().splitlines() if not line.startswith("glas_4")) + "\n")
    with pytest.raises(DataError, match=r"glas_4\.png: glas_4 is not listed in the release's split table"):
        build("lizard", tmp_path).samples()


def test_nucls_slide_outside_both_fold_lists(tmp_path):
    make_nucls(tmp_path)
    path = tmp_path / "NuCLS_dataset" / "train_test_splits" / "fold_1_train.csv"
    path.write_text("\n".join(line for line in path.read_text().splitlines() if "A1-A0SP" not in line) + "\n")
    with pytest.raises(
        DataError, match=r"TCGA-A1-A0SP-DX1_id-.*: TCGA-A1-A0SP-DX1 is not listed in either list of official fold 1"
    ):
        build("nucls", tmp_path).samples()


def test_unknown_class_mode_lists_the_known_ones(tmp_path):
    with pytest.raises(
        ConfigError, match=r"dataset.class_mode=weird is not defined for 'pannuke'; use one of \['default', 'paper'\]"
    ):
        build("pannuke", tmp_path, class_mode="weird")


def test_two_releases_of_one_dataset_under_one_root(tmp_path):
    make_cpm15_original(tmp_path)
    make_cpm15_hovernet(tmp_path)
    with pytest.raises(DataError, match=r"found both the original and the hovernet release"):
        build("cpm15", tmp_path).samples()
