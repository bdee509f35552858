"""`densebench data list|check|export` on the miniature releases."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from densebench.data.cli import main
from tests.data.fixtures_tissue import make, save
from tests.data.tissue.helpers import source

MINE = ["bcss", "cocahis", "cosas24", "crag", "ebhi", "folder", "glas", "janowczyk", "json_list", "rings", "wsss4luad"]


def test_list_shows_every_dataset_config_with_its_root_status(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in MINE + ["synthetic"]:
        assert name in out
    assert "root not set" in out and "found" in out  # synthetic needs no download


def test_check_on_a_good_release_prints_the_histogram_and_exits_zero(tmp_path, capsys):
    make("glas", tmp_path)
    assert main(["check", "dataset=glas", f"dataset.root={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "9 images" in out and "label histogram" in out and "no problems" in out


def _missing_mask(root):
    next(root.rglob("masks/case_4.png")).unlink()
    return "case_4.png"


def _truncated_image(root):
    path = root / "images" / "case_1.png"
    path.write_bytes(path.read_bytes()[:100])
    return "case_1.png: cannot decode"


def _size_mismatch(root):
    save(root / "masks" / "case_2.png", np.zeros((5, 5), np.uint8))
    return "case_2.png: mask size 5x5 differs"


def _out_of_range(root):
    save(root / "masks" / "case_3.png", np.full((36, 44), 9, np.uint8))
    return "case_3.png: label values [9]"


@pytest.mark.parametrize("breakage", [_missing_mask, _truncated_image, _size_mismatch, _out_of_range])
def test_check_on_a_broken_release_names_the_file_and_exits_nonzero(breakage, tmp_path, capsys):
    make("folder", tmp_path)
    expected = breakage(tmp_path)
    assert main(["check", "dataset=folder", f"dataset.root={tmp_path}"]) == 1
    assert expected in capsys.readouterr().out


def test_check_reports_files_left_out_of_the_release_as_problems(tmp_path, capsys):
    make("ebhi", tmp_path)
    assert main(["check", "dataset=ebhi", f"dataset.root={tmp_path}"]) == 1
    assert "Low-grade IN/image/GT2012149-2-400-001.png: no label file for this image" in capsys.readouterr().out


def test_export_writes_image_mask_and_overlay_pngs_per_sample(tmp_path):
    root, expected = make("wsss4luad", tmp_path / "release")
    out = tmp_path / "export"
    assert main(["export", "dataset=wsss4luad", f"dataset.root={root}", "--out", str(out), "--limit", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{k}_{kind}.png" for k in ("testing_00", "testing_01") for kind in ("image", "mask", "overlay")
    )
    np.testing.assert_array_equal(np.asarray(Image.open(out / "testing_00_mask.png")), expected["testing_00"].mask)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "testing_00_image.png")), expected["testing_00"].image)
    overlay = np.asarray(Image.open(out / "testing_00_overlay.png"))
    assert overlay.shape == expected["testing_00"].image.shape and not np.array_equal(
        overlay, expected["testing_00"].image
    )


def test_export_key_with_folder_separator_becomes_a_flat_file_name(tmp_path):
    root, _ = make("ebhi", tmp_path / "release")
    out = tmp_path / "export"
    assert main(["export", "dataset=ebhi", f"dataset.root={root}", "--out", str(out), "--limit", "1"]) == 0
    first = sorted(s.key for s in source("ebhi", root).samples())[0]
    assert (out / f"{first.replace('/', '_').replace(' ', '_')}_mask.png").is_file()


def test_unknown_dataset_name_is_a_one_line_config_error(tmp_path):
    from densebench.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot compose"):
        main(["check", "dataset=nope", f"dataset.root={tmp_path}"])
