"""`densebench predict` on whole-slide images: pyramidal mask, GeoJSON, areas, resolution, resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import shapely
import tifffile
from shapely.geometry import shape

from densebench.predict.cli import main as predict
from densebench.predict.writers import NOT_TISSUE
from tests.conftest import REPO
from tests.predict.conftest import tissue_canvas, write_slide

SLIDE_MPP, RUN_MPP = 0.25, 0.6  # the run reads level 1 (0.5 µm/px) and resamples it to 0.6 µm/px


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    path = tmp_path_factory.mktemp("slide") / "case1.svs"
    write_slide(path, tissue_canvas(640, 960), SLIDE_MPP)
    return path


@pytest.fixture(scope="module")
def slide_out(trained_run, slide, tmp_path_factory):
    out = tmp_path_factory.mktemp("slide_out")
    assert (
        predict(
            [str(trained_run), "--input", str(slide), "--out", str(out), "--mpp", str(RUN_MPP), "--progress", "none"]
        )
        == 0
    )
    return out


def test_synthetic_svs_is_a_three_level_aperio_slide(slide):
    import openslide

    s = openslide.OpenSlide(str(slide))
    assert s.properties["openslide.vendor"] == "aperio" and s.level_count == 3
    assert float(s.properties["openslide.mpp-x"]) == SLIDE_MPP


def test_slide_is_read_from_the_nearest_finer_level_at_the_runs_resolution(slide_out):
    facts = json.loads((slide_out / "case1.slide.json").read_text())
    plan = facts["plan"]
    assert (plan["level"], plan["level_downsample"]) == (1, 2.0)
    assert (plan["width"], plan["height"]) == (round(960 * SLIDE_MPP / RUN_MPP), round(640 * SLIDE_MPP / RUN_MPP))


def test_mask_is_a_pyramidal_tiff_with_the_working_resolution_in_tifffile(slide_out):
    with tifffile.TiffFile(slide_out / "case1.mask.tif") as tif:
        pages = list(tif.pages)
        assert len(pages) >= 2 and all(p.is_tiled for p in pages)
        assert pages[1].shape == tuple((s + 1) // 2 for s in pages[0].shape)
        x_res = pages[0].tags["XResolution"].value
        assert pages[0].tags["ResolutionUnit"].value == 3  # centimetre
        assert 1e4 / (x_res[0] / x_res[1]) == pytest.approx(RUN_MPP, rel=1e-4)


def test_mask_opens_in_openslide_with_the_right_mpp(slide_out):
    import openslide

    s = openslide.OpenSlide(str(slide_out / "case1.mask.tif"))
    assert float(s.properties["openslide.mpp-x"]) == pytest.approx(RUN_MPP, rel=1e-4)
    assert s.level_count >= 2


def test_background_is_skipped_by_the_tissue_mask(slide_out):
    labels = tifffile.imread(slide_out / "case1.mask.tif", key=0)
    margin = int(960 // 4 * SLIDE_MPP / RUN_MPP) - 2  # the canvas' white left quarter
    assert (labels[:, :margin] == NOT_TISSUE).all()
    assert (labels[:, margin + 4 :] < 3).mean() > 0.95


@pytest.mark.parametrize("block_windows", [2, 3])
def test_slide_labels_equal_the_test_path_on_the_whole_working_image(trained_run, slide, tmp_path, block_windows):
    """Blocks add up the windows that reach across their borders: no seams, the same windows, weights
    and labels as the run's test path given the working image in one piece (level 1: no resampling)."""
    import openslide

    from densebench.engine.inference import window_starts
    from densebench.predict.trained import load_run

    out = tmp_path / "out"
    args = ["--mpp", str(2 * SLIDE_MPP), "--tissue-threshold", "0", "--block-windows", str(block_windows)]
    predict([str(trained_run), "--input", str(slide), "--out", str(out), "--progress", "none", *args])
    s = openslide.OpenSlide(str(slide))
    rgb = np.ascontiguousarray(np.asarray(s.read_region((0, 0), 1, s.level_dimensions[1]))[..., :3])
    run = load_run(trained_run)
    whole = run.probabilities(rgb).argmax(0).numpy()
    labels = tifffile.imread(out / "case1.mask.tif", key=0)
    assert labels.shape == whole.shape
    assert (labels == whole).mean() >= 0.9999  # float sums in another order may flip an exact tie
    facts = json.loads((out / "case1.slide.json").read_text())
    starts = [len(window_starts(n, run.input_size, run.predictor.overlap)) for n in whole.shape]
    assert facts["windows"] == starts[0] * starts[1]


def test_geojson_is_valid_and_covers_the_masks_pixels(slide_out):
    collection = json.loads((slide_out / "case1.geojson").read_text())
    facts = json.loads((slide_out / "case1.slide.json").read_text())
    labels = tifffile.imread(slide_out / "case1.mask.tif", key=0)
    assert facts["geojson_level_downsample"] == 1
    scale = facts["plan"]["scale"]
    assert collection["type"] == "FeatureCollection" and collection["features"]
    yy, xx = np.mgrid[: labels.shape[0], : labels.shape[1]]
    for feature in collection["features"]:
        assert feature["properties"]["objectType"] == "annotation"
        geom = shape(feature["geometry"])
        assert geom.is_valid and shapely.equals(shape(shapely.geometry.mapping(geom)), geom)
        cls = ["stroma", "nucleus", "lumen"].index(feature["properties"]["classification"]["name"])
        inside = shapely.contains_xy(geom, (xx + 0.5) * scale, (yy + 0.5) * scale)
        truth = labels == cls
        assert (inside & truth).sum() / (inside | truth).sum() >= 0.99


def test_class_areas_are_in_square_millimetres(slide_out):
    labels = tifffile.imread(slide_out / "case1.mask.tif", key=0)
    rows = list(csv.DictReader((slide_out / "areas.csv").open()))
    for cls, row in enumerate(rows):
        assert float(row["area_mm2"]) == pytest.approx((labels == cls).sum() * RUN_MPP**2 / 1e6, rel=1e-4)


def small_blocks(slide, out) -> list[str]:
    """Predict options with many small blocks (2×2 windows), for the resume tests."""
    return [
        "--input",
        str(slide),
        "--out",
        str(out),
        "--mpp",
        str(RUN_MPP),
        "--progress",
        "none",
        "--block-windows",
        "2",
    ]


def test_an_interrupted_slide_prediction_redoes_only_unfinished_blocks(trained_run, slide, tmp_path, monkeypatch):
    """A crash after three blocks (in this process; the SIGKILL test below is the real thing): the rerun
    predicts only the remaining blocks and writes the same bytes as an uninterrupted run."""
    from densebench.predict.trained import TrainedRun

    real, calls = TrainedRun.window_sums, []

    def counted(self, image, boxes, size, crash_at=None):
        if len(calls) == crash_at:
            raise RuntimeError("simulated crash")
        calls.append(image.shape)
        return real(self, image, boxes, size)

    def command(out):
        return [str(trained_run), *small_blocks(slide, out)]

    monkeypatch.setattr(TrainedRun, "window_sums", lambda self, *a: counted(self, *a, crash_at=3))
    with pytest.raises(RuntimeError, match="simulated crash"):
        predict(command(tmp_path / "resumed"))
    assert len((tmp_path / "resumed" / ".case1.partial" / "done.txt").read_text().split()) == 3
    monkeypatch.setattr(TrainedRun, "window_sums", lambda self, *a: counted(self, *a))
    predict(command(tmp_path / "resumed"))
    resumed_blocks = len(calls) - 3
    calls.clear()
    predict(command(tmp_path / "fresh"))
    assert resumed_blocks == len(calls) - 3
    for name in ("case1.mask.tif", "case1.geojson", "case1.slide.json", "areas.csv"):
        assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name


@pytest.mark.slow  # two CLI processes (~1-2 min on 2 shared vCPUs)
def test_a_killed_slide_prediction_resumes_and_writes_the_same_files(trained_run, slide, slide_out, tmp_path):
    """kill -9 after a few finished blocks; the rerun finishes the rest, byte-identical to the uninterrupted run."""

    def command(out):
        return [sys.executable, "-m", "densebench", "predict", str(trained_run), *small_blocks(slide, out)]

    out, fresh = tmp_path / "resumed", tmp_path / "fresh"
    args = command(out)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = out / ".case1.partial" / "done.txt"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if done.is_file() and done.read_text().count("\n") >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the prediction ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = done.read_text().count("\n")
    assert not (out / "case1.mask.tif").exists()
    rerun = subprocess.run(args, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert finished >= 3 and not (out / ".case1.partial").exists()
    assert predict(command(fresh)[4:]) == 0  # uninterrupted, in this process
    for name in ("case1.mask.tif", "case1.geojson", "case1.slide.json", "areas.csv"):
        assert (out / name).read_bytes() == (fresh / name).read_bytes(), name


def test_the_slide_is_read_through_a_tile_cache_of_one_block_not_openslides_default(
    trained_run, slide, tmp_path, monkeypatch
):
    """OpenSlide's default cache (32 MiB per slide) fills with the last tiles read, so memory would grow
    with the slide up to that size; the cache holds one block of the level read plus a ring of tiles."""
    import openslide

    capacities, real = [], openslide.OpenSlideCache

    def recorded(capacity):
        capacities.append(capacity)
        return real(capacity)

    monkeypatch.setattr(openslide, "OpenSlideCache", recorded)
    out = tmp_path / "out"
    predict([str(trained_run), "--input", str(slide), "--out", str(out), "--mpp", str(RUN_MPP), "--progress", "none"])
    plan = json.loads((out / "case1.slide.json").read_text())["plan"]
    side = -(-plan["block"] * plan["scale"] // plan["level_downsample"])  # ceil: one block in level pixels
    assert capacities == [4 * (side + 2 * 64) ** 2]  # the synthetic slide's tiles are 64²
