"""Bad inputs to `densebench predict` end in one line naming the file and the fix."""

from __future__ import annotations

import json
import shutil

import pytest
import tifffile
import yaml

from densebench.cli import main as cli
from densebench.errors import ConfigError, DataError
from densebench.predict.cli import main as predict
from tests.predict.conftest import tissue_canvas, write_slide


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of the trained run to damage."""
    return shutil.copytree(trained_run, tmp_path / "run")


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    path = tmp_path / "in" / "a.png"
    path.parent.mkdir()
    Image.fromarray(tissue_canvas(64, 64)[:, :, :]).save(path)
    return path


def test_a_file_that_is_not_an_image_is_named_on_one_line(trained_run, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    with pytest.raises(SystemExit) as exit_:
        cli(["predict", str(trained_run), "--input", str(bad), "--out", str(tmp_path / "o"), "--progress", "none"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and str(bad) in err and "cannot decode" in err


def test_an_unknown_suffix_is_not_an_image_or_slide(trained_run, tmp_path):
    bad = tmp_path / "table.csv"
    bad.write_text("a,b\n")
    with pytest.raises(DataError, match=r"table\.csv: not an image or slide"):
        predict([str(trained_run), "--input", str(bad), "--out", str(tmp_path / "o")])


def test_an_unreadable_pyramid_level_is_named(trained_run, tmp_path):
    path = tmp_path / "broken.svs"
    write_slide(path, tissue_canvas(256, 384), 0.25)
    with tifffile.TiffFile(path) as tif:
        offsets, counts = tif.pages[1].dataoffsets, tif.pages[1].databytecounts
    with path.open("r+b") as f:  # level 1's compressed tiles become garbage
        for offset, count in zip(offsets, counts):
            f.seek(offset)
            f.write(b"\xff" * count)
    with pytest.raises(DataError, match=r"broken\.svs: pyramid level 1 cannot be read"):
        predict(
            [str(trained_run), "--input", str(path), "--out", str(tmp_path / "o"), "--mpp", "0.5", "--progress", "none"]
        )


def test_a_slide_without_resolution_asks_for_its_mpp(trained_run, tmp_path):
    path = tmp_path / "plain.tif"
    write_slide(path, tissue_canvas(256, 384), None, svs=False)
    with pytest.raises(DataError, match=r"plain\.tif: no resolution metadata.*--slide-mpp"):
        predict([str(trained_run), "--input", str(path), "--out", str(tmp_path / "o"), "--mpp", "0.5"])
    assert (
        predict(
            [
                str(trained_run),
                "--input",
                str(path),
                "--out",
                str(tmp_path / "o"),
                "--mpp",
                "0.5",
                "--slide-mpp",
                "0.25",
                "--progress",
                "none",
            ]
        )
        == 0
    )


def test_blocks_too_small_for_the_overlap_name_the_option_and_the_least_value(trained_run, tmp_path):
    """At overlap 0.75 a window reaches four strides: smaller blocks would spill past their neighbours."""
    path = tmp_path / "s.svs"
    write_slide(path, tissue_canvas(128, 128), 0.25)
    args = ["--input", str(path), "--out", str(tmp_path / "o"), "--mpp", "0.5", "--block-windows", "3"]
    with pytest.raises(ConfigError, match=r"--block-windows 3: with eval.overlap=0.75 a block needs at least 4"):
        predict([str(trained_run), *args, "eval.overlap=0.75"])
    assert not list((tmp_path / "o").glob(".*.partial"))


def test_a_run_without_a_training_resolution_asks_for_mpp_on_slides(trained_run, tmp_path):
    path = tmp_path / "s.svs"
    write_slide(path, tissue_canvas(128, 128), 0.25)
    with pytest.raises(ConfigError, match=r"config\.yaml: dataset synthetic has no mpp.*--mpp"):
        predict([str(trained_run), "--input", str(path), "--out", str(tmp_path / "o")])


def test_a_palette_with_another_number_of_classes_names_the_config(run_copy, image, tmp_path):
    config = run_copy / "config.yaml"
    cfg = yaml.safe_load(config.read_text())
    cfg["dataset"]["colors"] = cfg["dataset"]["colors"][:2]
    config.write_text(yaml.safe_dump(cfg))
    with pytest.raises(DataError, match=r"config\.yaml: dataset\.colors has 2 colours but the run was trained for 3"):
        predict([str(run_copy), "--input", str(image), "--out", str(tmp_path / "o")])


def test_a_checkpoint_for_another_number_of_classes_names_the_checkpoint(run_copy, image, tmp_path):
    metrics = run_copy / "metrics.json"
    record = json.loads(metrics.read_text())
    record["data"].update(num_classes=4, class_names=["a", "b", "c", "d"])
    metrics.write_text(json.dumps(record))
    config = run_copy / "config.yaml"
    cfg = yaml.safe_load(config.read_text())
    cfg["dataset"]["colors"] = None
    config.write_text(yaml.safe_dump(cfg))
    with pytest.raises(DataError, match=r"best\.pt: tensor .* has shape"):
        predict([str(run_copy), "--input", str(image), "--out", str(tmp_path / "o")])


def test_an_unfinished_run_names_its_metrics_file(run_copy, image, tmp_path):
    (run_copy / "metrics.json").unlink()
    with pytest.raises(DataError, match=r"metrics\.json: missing or not complete"):
        predict([str(run_copy), "--input", str(image), "--out", str(tmp_path / "o")])


def test_a_missing_best_checkpoint_is_named(run_copy, image, tmp_path):
    (run_copy / "checkpoints" / "best.pt").unlink()
    with pytest.raises(DataError, match=r"checkpoints/best\.pt: not found"):
        predict([str(run_copy), "--input", str(image), "--out", str(tmp_path / "o")])


def test_only_eval_settings_and_device_can_be_overridden(trained_run, image, tmp_path):
    with pytest.raises(ConfigError, match="train.lr is fixed by the trained run"):
        predict([str(trained_run), "train.lr=1", "--input", str(image), "--out", str(tmp_path / "o")])


def test_an_output_that_would_replace_an_input_is_refused_even_with_force(trained_run, image):
    with pytest.raises(DataError, match=r"a\.png: an output would replace this input"):
        predict([str(trained_run), "--input", str(image.parent), "--out", str(image.parent), "--force"])
