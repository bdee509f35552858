"""Bad release files give one clear DataError naming the file; nothing is silently dropped or remapped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densebench.errors import ConfigError, DataError
from tests.data.fixtures_tissue import bcss_tsv, make, save, save_palette
from tests.data.tissue.helpers import source


def load_all(name: str, root: Path, *overrides: str) -> None:
    src = source(name, root, *overrides)
    for sample in src.samples():
        src.load(sample)


def test_missing_root_names_the_option(tmp_path):
    with pytest.raises(DataError, match="dataset.root=.*not a directory"):
        source("glas", tmp_path / "nowhere").samples()


def test_root_without_the_release_says_no_image_matches(tmp_path):
    with pytest.raises(DataError, match="no image matches"):
        source("crag", tmp_path).samples()


def test_image_without_its_mask_is_an_error_naming_the_image(tmp_path):
    make("glas", tmp_path)
    next(tmp_path.rglob("testA_2_anno.bmp")).unlink()
    with pytest.raises(DataError, match=r"testA_2\.bmp: no _anno\.bmp file"):
        source("glas", tmp_path).samples()


def test_truncated_image_is_an_error_naming_it(tmp_path):
    make("crag", tmp_path)
    path = next(tmp_path.rglob("Images/train_3.png"))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"train_3\.png: cannot decode"):
        load_all("crag", tmp_path)


def test_mask_of_another_size_is_an_error_naming_the_mask(tmp_path):
    make("cosas24", tmp_path)
    path = next(tmp_path.rglob("mask/03ab03cd03ef.png"))
    save(path, np.zeros((10, 10), np.uint8))
    with pytest.raises(DataError, match=r"03ab03cd03ef\.png: mask size 10x10 differs"):
        load_all("cosas24", tmp_path)


def test_label_outside_the_class_list_is_an_error(tmp_path):
    make("folder", tmp_path)
    save(tmp_path / "masks" / "case_2.png", np.full((36, 44), 7, np.uint8))
    with pytest.raises(DataError, match=r"label values \[7\] are outside classes 0..1"):
        load_all("folder", tmp_path)


def test_unknown_bcss_code_is_an_error_not_ignore(tmp_path):
    make("bcss", tmp_path)
    path = sorted(tmp_path.rglob("masks/*.png"))[0]
    save(path, np.full((36, 44), 30, np.uint8))
    with pytest.raises(DataError, match=rf"{path.name}: label codes \[30\] have no class"):
        load_all("bcss", tmp_path)


def test_bcss_code_table_that_disagrees_with_the_config_is_an_error(tmp_path):
    make("bcss", tmp_path)
    bcss_tsv(tmp_path / "meta" / "gtruth_codes.tsv", ["outside_roi", "stroma", "tumor"])
    with pytest.raises(DataError, match="gtruth_codes.tsv: code 1 = 'stroma' disagrees"):
        source("bcss", tmp_path).samples()


def test_unknown_wsss4luad_colour_is_an_error_not_background(tmp_path):
    make("wsss4luad", tmp_path)
    path = next(tmp_path.rglob("3.testing/mask/01.png"))
    save_palette(path, np.zeros((36, 44), np.uint8), [(1, 2, 3)])
    with pytest.raises(DataError, match=r"01\.png: colour \(1, 2, 3\) is not in the dataset's class colours"):
        load_all("wsss4luad", tmp_path)


def test_ebhi_category_folder_outside_the_class_map_is_an_error(tmp_path):
    make("ebhi", tmp_path)
    save(tmp_path / "EBHI-SEG" / "Other" / "image" / "GT1-1.png", np.zeros((36, 44, 3), np.uint8))
    save(tmp_path / "EBHI-SEG" / "Other" / "label" / "GT1-1.png", np.zeros((36, 44), np.uint8))
    with pytest.raises(DataError, match="'Other' .*not in dataset.class_map"):
        load_all("ebhi", tmp_path)


def test_duplicate_copy_of_an_image_is_an_error_naming_both(tmp_path):
    make("janowczyk", tmp_path / "a")
    make("janowczyk", tmp_path / "b")
    with pytest.raises(DataError, match="both have key '12700_500_f00000'"):
        source("janowczyk", tmp_path).samples()


def test_unknown_class_mode_is_a_config_error(tmp_path):
    make("bcss", tmp_path)
    with pytest.raises(ConfigError, match="dataset.class_mode=weird is not defined"):
        source("bcss", tmp_path, "dataset.class_mode=weird")


def test_cocahis_split_value_outside_the_map_is_an_error(tmp_path):
    import h5py

    make("cocahis", tmp_path)
    with h5py.File(next(tmp_path.rglob("CoCaHis.hdf5")), "a") as f:
        f["HE"].attrs["train_test_split"] = np.array(["train"] * 8 + ["holdout"], dtype="S")
    with pytest.raises(DataError, match="row 8 has split 'holdout'"):
        source("cocahis", tmp_path).samples()


def test_json_list_entry_without_mask_is_an_error_naming_the_entry(tmp_path):
    import json

    path, _ = make("json_list", tmp_path)
    data = json.loads(path.read_text())
    data["data"]["test"][0]["mask_path"] = None
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"dataset.json data.test\[0\]: no mask_path"):
        source("json_list", path).samples()


def test_json_list_classes_must_match_num_classes(tmp_path):
    path, _ = make("json_list", tmp_path)
    with pytest.raises(ConfigError, match="lists 2 classes but .* num_classes=3"):
        source("json_list", path, "dataset.classes=[a,b]")


def test_colour_mask_where_class_ids_are_expected_is_an_error(tmp_path):
    make("folder", tmp_path)
    colour = np.zeros((36, 44, 3), np.uint8)
    colour[..., 0] = 1
    Image.fromarray(colour).save(tmp_path / "masks" / "case_1.png")
    with pytest.raises(DataError, match=r"case_1\.png: expected a single-channel label"):
        load_all("folder", tmp_path)
