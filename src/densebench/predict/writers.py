"""Prediction outputs, each written atomically: label PNG with the class palette, probabilities,
overlay JPEG, class-area tables, the pyramidal label TIFF and QuPath GeoJSON of a slide."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from densebench.engine.gallery import colourize
from densebench.files import write_atomic

NOT_TISSUE = 255  # label value of slide pixels the tissue mask left out (never a class: at most 255 classes)


def png_bytes(image: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, **kwargs)
    return buf.getvalue()


def palette_image(labels: np.ndarray, colours: np.ndarray) -> Image.Image:
    """Class ids as a palette ('P') image: viewers show the class colours, readers get the ids back."""
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    table = np.zeros((256, 3), np.uint8)
    table[: len(colours)] = colours
    img.putpalette(table.reshape(-1).tolist())
    return img


def write_label_png(path: Path, labels: np.ndarray, colours: np.ndarray) -> None:
    write_atomic(path, png_bytes(palette_image(labels, colours), format="PNG", optimize=False))


def write_probabilities(path: Path, probs: np.ndarray, classes: list[str]) -> None:
    """`probs`: float16 (C, H, W) class probabilities; `classes`: their names (np.savez_compressed)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, probs=probs.astype(np.float16), classes=np.array(classes))
    write_atomic(path, buf.getvalue())


def write_overlay(
    path: Path, image: np.ndarray, labels: np.ndarray, colours: np.ndarray, ignore_index: int, quality: int
) -> None:
    rgb = colourize(image, labels, colours, ignore_index)
    write_atomic(path, png_bytes(Image.fromarray(rgb), format="JPEG", quality=quality))


AREA_COLUMNS = ("input", "class", "pixels", "fraction", "area_mm2")


def area_rows(name: str, counts: np.ndarray, classes: list[str], mpp: float | None) -> list[dict]:
    """One row per class: pixels, fraction of the predicted pixels, mm² when the µm/px is known."""
    total = max(int(counts.sum()), 1)
    return [
        {
            "input": name,
            "class": c,
            "pixels": int(n),
            "fraction": round(int(n) / total, 6),
            "area_mm2": "" if mpp is None else round(int(n) * mpp * mpp / 1e6, 6),
        }
        for c, n in zip(classes, counts)
    ]


def write_areas(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=AREA_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue().encode())


def colormap(colours: np.ndarray) -> np.ndarray:
    """TIFF palette (3, 256) uint16: class colours, NOT_TISSUE and unused values black."""
    table = np.zeros((3, 256), np.uint16)
    table[:, : len(colours)] = colours.T.astype(np.uint16) * 257
    return table


def write_pyramid(
    path: Path,
    shape: tuple[int, int],
    read_band: Callable[[int, int, int], np.ndarray],
    colours: np.ndarray,
    mpp: float,
    tile: int,
) -> list[int]:
    """Tiled pyramidal TIFF of class ids (palette photometric, zlib) with its µm/px as resolution.

    `read_band(y0, y1, step)`: rows y0..y1 (step `step`) of level 0, every `step`-th column: levels are
    nearest-neighbour subsamples by 2^k read band by band, so memory is one band of tiles. Returns the
    downsample of each level.
    """
    import tifffile

    h, w = shape
    levels = [1]
    while max(math.ceil(h / levels[-1]), math.ceil(w / levels[-1])) > tile:
        levels.append(levels[-1] * 2)
    cmap = colormap(colours)
    tmp = path.with_name(f".{path.name}.tmp")
    with tifffile.TiffWriter(tmp, bigtiff=h * w > 2**31) as tw:
        for k, step in enumerate(levels):
            lh, lw = math.ceil(h / step), math.ceil(w / step)
            res = 1e4 / (mpp * step)  # pixels per cm
            tw.write(
                _tiles(read_band, lh, lw, step, tile),
                shape=(lh, lw),
                dtype=np.uint8,
                tile=(tile, tile),
                photometric="palette",
                colormap=cmap,
                compression="zlib",
                resolution=(res, res),
                resolutionunit="CENTIMETER",
                subfiletype=1 if k else 0,
                metadata=None,
                software="densebench",
            )
    os.replace(tmp, path)
    return levels


def _tiles(read_band, lh: int, lw: int, step: int, tile: int) -> Iterator[np.ndarray]:
    for ty in range(0, lh, tile):
        band = read_band(ty * step, min(lh, ty + tile) * step, step)
        for tx in range(0, lw, tile):
            t = np.zeros((tile, tile), np.uint8)
            part = band[:, tx : tx + tile]
            t[: part.shape[0], : part.shape[1]] = part
            yield t


def class_geometry(labels: np.ndarray, cls: int, band: int = 256):
    """The exact pixel area of one class as a shapely (Multi)Polygon in pixel-edge coordinates.

    Horizontal runs become boxes (runs repeated on consecutive rows merged into taller boxes first);
    the union of the boxes traces the pixel boundaries exactly. Boxes are united band by band of
    `band` rows, then the bands: memory is one band's boxes plus the polygons, not all boxes at once.
    """
    import shapely

    parts = [
        g for y in range(0, labels.shape[0], band) if (g := _band_geometry(labels[y : y + band] == cls, y)) is not None
    ]
    return shapely.union_all(parts) if parts else None


def _band_geometry(mask: np.ndarray, y_offset: int):
    import shapely

    m = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    m[:, 1:-1] = mask
    d = np.diff(m, axis=1)
    ys, x0 = np.nonzero(d == 1)
    _, x1 = np.nonzero(d == -1)
    if not len(ys):
        return None
    order = np.lexsort((ys, x1, x0))  # by extent, then row: a run continuing the one above follows it
    ys, x0, x1 = ys[order], x0[order], x1[order]
    starts = np.flatnonzero(np.r_[True, (x0[1:] != x0[:-1]) | (x1[1:] != x1[:-1]) | (ys[1:] != ys[:-1] + 1)])
    bottoms = np.r_[ys[starts[1:] - 1], ys[-1]] + 1
    return shapely.union_all(shapely.box(x0[starts], ys[starts] + y_offset, x1[starts], bottoms + y_offset))


def write_geojson(path: Path, labels: np.ndarray, classes: list[str], colours: np.ndarray, scale: float) -> int:
    """QuPath-importable FeatureCollection: one annotation (MultiPolygon) per predicted class, coordinates in
    the slide's level-0 pixels (`scale`: slide pixels per `labels` pixel). Returns the feature count.

    Geometries are serialised by shapely (GEOS) straight to text: no Python object per vertex."""
    import shapely
    import shapely.affinity

    features = []
    for cls, name in enumerate(classes):
        geom = class_geometry(labels, cls)
        if geom is None:
            continue
        geom = shapely.affinity.scale(geom, scale, scale, origin=(0, 0))
        properties = {
            "objectType": "annotation",
            "name": name,
            "classification": {"name": name, "color": [int(c) for c in colours[cls]]},
        }
        features.append(
            f'{{"type":"Feature","geometry":{shapely.to_geojson(geom)},'
            f'"properties":{json.dumps(properties, separators=(",", ":"))}}}'
        )
    write_atomic(path, ('{"type":"FeatureCollection","features":[' + ",".join(features) + "]}").encode())
    return len(features)
