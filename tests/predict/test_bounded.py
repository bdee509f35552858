"""Slide outputs come from bounded reads of the label file, so their memory does not grow with the slide."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import shapely
import tifffile
from shapely.geometry import shape

from densebench.predict import writers
from densebench.predict.slide import LabelStore

COLOURS = np.array([[200, 0, 0], [0, 200, 0], [0, 0, 200]], np.uint8)


class RecordingRaster:
    """An in-memory label raster that records the size of every read."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels
        self.height, self.width = labels.shape
        self.reads: list[int] = []

    def read(self, y0: int, y1: int, step: int = 1, x0: int = 0, x1: int | None = None) -> np.ndarray:
        out = self.labels[y0:y1:step, x0 : self.width if x1 is None else x1 : step]
        self.reads.append(out.nbytes)
        return out


@pytest.fixture
def labels() -> np.ndarray:
    """Blobs of three classes and some not-tissue, 300 × 700."""
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 4, (15, 35)).astype(np.uint8)
    grid = np.kron(coarse, np.ones((20, 20), np.uint8))
    grid[grid == 3] = writers.NOT_TISSUE
    return grid


@pytest.fixture
def store(tmp_path, labels) -> LabelStore:
    s = LabelStore(tmp_path / "labels.u8", *labels.shape)
    s.write_block(0, 0, labels)
    yield s
    s.close()


@pytest.mark.parametrize(
    "window", [(0, 300, 1, 0, None), (5, 290, 1, 33, 600), (0, 300, 4, 0, None), (7, 299, 3, 10, 698)]
)
def test_label_store_reads_any_row_and_column_range_with_a_step(store, labels, window):
    y0, y1, step, x0, x1 = window
    assert np.array_equal(store.read(y0, y1, step, x0, x1), labels[y0:y1:step, x0:x1:step])


def test_label_store_counts_in_small_bands_equal_the_whole_count(store, labels, monkeypatch):
    monkeypatch.setattr("densebench.predict.slide.COUNT_BYTES", 1000)  # about one row per band
    assert store.counts(3).tolist() == np.bincount(labels.reshape(-1), minlength=256)[:3].tolist()


def test_pyramid_is_written_from_reads_of_at_most_read_bytes(tmp_path, labels, monkeypatch):
    monkeypatch.setattr(writers, "READ_BYTES", 64 * 64 * 2)  # two tiles of columns per read
    raster = RecordingRaster(labels)
    levels = writers.write_pyramid(tmp_path / "m.tif", raster, COLOURS, 0.5, 64)
    assert max(raster.reads) <= 64 * 64 * 2 and len(raster.reads) > 10
    with tifffile.TiffFile(tmp_path / "m.tif") as tif:
        for page, step in zip(tif.pages, levels):
            assert np.array_equal(page.asarray(), labels[::step, ::step])


def test_geojson_traces_the_labels_from_reads_of_at_most_geometry_bytes(tmp_path, labels, monkeypatch):
    monkeypatch.setattr(writers, "GEOMETRY_BYTES", 700 * 16)  # 16 rows per band
    raster = RecordingRaster(labels)
    n = writers.write_geojson(tmp_path / "m.geojson", raster, 1, ["a", "b", "c"], COLOURS, 2.0)
    assert n == 3 and max(raster.reads) <= 700 * 16
    features = json.loads((tmp_path / "m.geojson").read_text())["features"]
    yy, xx = np.mgrid[: labels.shape[0], : labels.shape[1]]
    for cls, feature in enumerate(features):
        inside = shapely.contains_xy(shape(feature["geometry"]), (xx + 0.5) * 2.0, (yy + 0.5) * 2.0)
        assert np.array_equal(inside, labels == cls)


def test_geojson_of_a_coarser_level_is_scaled_to_slide_pixels(tmp_path, labels):
    raster = RecordingRaster(labels)
    writers.write_geojson(tmp_path / "m.geojson", raster, 4, ["a", "b", "c"], COLOURS, 2.0)
    features = json.loads((tmp_path / "m.geojson").read_text())["features"]
    level = labels[::4, ::4]
    expected = shapely.box(0, 0, 8 * math.ceil(700 / 4), 8 * math.ceil(300 / 4))
    union = shapely.union_all([shape(f["geometry"]) for f in features])
    assert shapely.within(union, expected)
    assert shape(features[0]["geometry"]).area == pytest.approx((level == 0).sum() * 8.0**2)


def traced(labels: np.ndarray, tmp_path, name: str) -> list:
    """The polygons of class 1 as the GeoJSON writer writes them (slide pixels = label pixels)."""
    writers.write_geojson(tmp_path / name, RecordingRaster(labels), 1, ["0", "1"], COLOURS[:2], 1.0)
    (feature,) = [f for f in json.loads((tmp_path / name).read_text())["features"] if f["properties"]["name"] == "1"]
    return list(shapely.get_parts(shape(feature["geometry"])))


def test_polygons_that_meet_only_in_a_later_band_come_out_as_one(tmp_path, monkeypatch):
    """A U (arms joined at the bottom), an arch (split at the bottom) and a ring: traced 3 rows at a
    time they are the same polygons as traced in one band."""
    shapes = np.zeros((40, 60), np.uint8)
    shapes[5:30, 2:6] = shapes[5:30, 14:18] = shapes[26:30, 2:18] = 1  # U
    shapes[5:9, 22:38] = shapes[5:30, 22:26] = shapes[5:30, 34:38] = 1  # arch
    shapes[8:36, 42:58] = 1
    shapes[14:30, 47:53] = 0  # ring with a hole
    whole = traced(shapes, tmp_path, "whole.geojson")
    monkeypatch.setattr(writers, "GEOMETRY_BYTES", 60 * 3)
    banded = traced(shapes, tmp_path, "banded.geojson")
    assert len(whole) == len(banded) == 3
    assert shapely.equals(shapely.MultiPolygon(banded), shapely.MultiPolygon(whole))
    assert sorted(shapely.get_num_interior_rings(banded)) == [0, 0, 1]


def test_holes_set_aside_while_tracing_come_back_in_the_polygon_they_end_up_in(tmp_path, monkeypatch):
    """A U whose arms are full of holes (finished long before the arms join) and a ring traced 3 rows
    at a time: the same polygons, with every hole, as traced in one band."""
    shapes = np.zeros((60, 50), np.uint8)
    shapes[2:50, 2:20] = shapes[2:50, 28:46] = shapes[44:56, 2:46] = 1  # U with thick arms
    shapes[4:40:4, 5:18:4] = shapes[4:40:4, 31:44:4] = 0  # single-pixel holes in both arms
    whole = traced(shapes, tmp_path, "whole.geojson")
    monkeypatch.setattr(writers, "GEOMETRY_BYTES", 50 * 3)
    banded = traced(shapes, tmp_path, "banded.geojson")
    assert len(whole) == len(banded) == 1 and banded[0].is_valid
    assert len(banded[0].interiors) == len(whole[0].interiors) == 2 * 9 * 4
    assert shapely.equals(banded[0], whole[0])
