"""Prediction outputs, each written atomically: label PNG with the class palette, probabilities,
overlay JPEG, class-area tables, the pyramidal label TIFF and QuPath GeoJSON of a slide."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from densebench.engine.gallery import colourize
from densebench.files import atomic_path, write_atomic

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


class LabelRaster(Protocol):
    """Class ids of a slide's working grid, read by windows (the slide's raw label file)."""

    height: int
    width: int

    def read(self, y0: int, y1: int, step: int = 1, x0: int = 0, x1: int | None = None) -> np.ndarray:
        """Rows y0, y0+step, ... < y1 and columns x0, x0+step, ... < x1 (default: to the right edge)."""
        ...


READ_BYTES = 2**22  # the most label bytes the pyramid writer holds at once: its memory does not grow with the slide
GEOMETRY_BYTES = 2**18  # label bytes traced at once (their runs and boxes take many times that)


def write_pyramid(path: Path, labels: LabelRaster, colours: np.ndarray, mpp: float, tile: int) -> list[int]:
    """Tiled pyramidal TIFF of class ids (palette photometric, zlib) with its µm/px as resolution.

    Levels are nearest-neighbour subsamples by 2^k, read tile row by tile row in chunks of at most
    `READ_BYTES`, and tifffile encodes a bounded number of tiles at a time. Returns each level's downsample.
    """
    import tifffile

    h, w = labels.height, labels.width
    levels = [1]
    while max(math.ceil(h / levels[-1]), math.ceil(w / levels[-1])) > tile:
        levels.append(levels[-1] * 2)
    cmap = colormap(colours)
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=h * w > 2**31) as tw:
        for k, step in enumerate(levels):
            lh, lw = math.ceil(h / step), math.ceil(w / step)
            res = 1e4 / (mpp * step)  # pixels per cm
            tw.write(
                _tiles(labels, lh, lw, step, tile),
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
                buffersize=READ_BYTES,  # tiles tifffile collects for its encoding threads (default: hundreds of MB)
            )
    return levels


def _tiles(labels: LabelRaster, lh: int, lw: int, step: int, tile: int) -> Iterator[np.ndarray]:
    chunk = max(1, READ_BYTES // (tile * tile)) * tile  # level columns read at once
    for ty in range(0, lh, tile):
        y0, y1 = ty * step, min(lh, ty + tile) * step
        for cx in range(0, lw, chunk):
            band = labels.read(y0, y1, step, cx * step, min(lw, cx + chunk) * step)
            for tx in range(0, band.shape[1], tile):
                t = np.zeros((tile, tile), np.uint8)
                part = band[:, tx : tx + tile]
                t[: part.shape[0], : part.shape[1]] = part
                yield t


def traced_polygons(labels: LabelRaster, cls: int, step: int = 1) -> Iterator[tuple[Any, list[np.ndarray]]]:
    """The exact pixel area of one class, at downsample `step`, as (Polygon, held holes) in that
    level's pixel-edge coordinates, each yielded as soon as it is complete; the polygon's holes are
    its own interior rings plus the held ones (coordinate arrays), which the writer writes after them.

    Horizontal runs become boxes (runs repeated on consecutive rows merged into taller boxes first);
    the union of the boxes traces the pixel boundaries exactly. Rows are read band by band; a band's
    boxes are united with the polygons still open (those reaching the previous band's bottom edge), and
    a polygon that ends above the band's bottom edge cannot grow any more, so it is yielded and freed.
    Holes of an open polygon that end above the band's bottom edge cannot change either: they are
    set aside as coordinates and yielded with their polygon, so GEOS unites each band with
    the open polygons' outlines, not with the thousands of holes a region spanning a slide collects.
    """
    import shapely

    h = math.ceil(labels.height / step)
    band = max(1, GEOMETRY_BYTES // math.ceil(labels.width / step))
    open_parts = np.empty(0, object)
    held: list[list[np.ndarray]] = []  # per open polygon: its finished holes, as coordinates
    for y in range(0, h, band):
        y1 = min(h, y + band)
        g = _band_geometry(labels.read(y * step, y1 * step, step) == cls, y)
        if g is None:
            yield from zip(open_parts, held)
            open_parts, held = np.empty(0, object), []
            continue
        parts = shapely.get_parts(shapely.union_all([*open_parts, g]))
        held = _carry_holes(open_parts, held, parts)
        done = shapely.bounds(parts)[:, 3] < y1
        yield from zip(parts[done], [held[i] for i in np.flatnonzero(done)])
        kept = [_set_holes_aside(parts[i], held[i], y1) for i in np.flatnonzero(~done)]
        open_parts = np.array([p for p, _ in kept], dtype=object)
        held = [k for _, k in kept]
    yield from zip(open_parts, held)


def _carry_holes(old: np.ndarray, held: list[list[np.ndarray]], parts: np.ndarray) -> list[list[np.ndarray]]:
    """Holes set aside for the old open polygons, passed to the united part each old one lies in."""
    import shapely

    new: list[list[np.ndarray]] = [[] for _ in parts]
    holding = [i for i, h in enumerate(held) if h]
    if holding:
        points = shapely.point_on_surface(old[holding])  # inside the old polygon, so inside its part
        which, part = shapely.STRtree(parts).query(points, predicate="within")
        for i, j in zip(which, part):
            new[j].extend(held[holding[i]])
    return new


def _set_holes_aside(polygon, held: list[np.ndarray], y1: int):
    """`polygon` without its holes that end above row `y1` (appended to `held` as coordinates)."""
    import shapely

    rings = shapely.get_rings(polygon)
    if len(rings) == 1:
        return polygon, held
    complete = shapely.bounds(rings[1:])[:, 3] < y1
    if not complete.any():
        return polygon, held
    held = held + [shapely.get_coordinates(r) for r in rings[1:][complete]]
    return shapely.polygons(rings[0], holes=rings[1:][~complete]), held


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


RING_PREFIX = '{"type":"LineString","coordinates":'


def _ring_text(coords: np.ndarray) -> str:
    """GeoJSON coordinates of one ring, written by GEOS (one ring at a time: GEOS builds a JSON tree of
    what it writes, which for a whole polygon with thousands of holes is tens of MB)."""
    import shapely

    text = shapely.to_geojson(shapely.linearrings(coords))
    if not text.startswith(RING_PREFIX):
        raise ValueError(f"expected a ring, shapely wrote {text[:40]}")
    return text[len(RING_PREFIX) : -1]


def write_geojson(
    path: Path, labels: LabelRaster, step: int, classes: list[str], colours: np.ndarray, scale: float
) -> int:
    """QuPath-importable FeatureCollection: one annotation (MultiPolygon) per predicted class, traced on
    the labels' downsample `step`, coordinates in the slide's level-0 pixels (`scale`: slide pixels per
    label pixel). Returns the feature count.

    Streamed to the file ring by ring as `traced_polygons` completes polygons; shapely (GEOS) writes
    the coordinates, so there is no Python object per vertex."""
    import shapely

    factor = scale * step
    n = 0
    with atomic_path(path) as tmp, tmp.open("w") as f:
        f.write('{"type":"FeatureCollection","features":[')
        for cls, name in enumerate(classes):
            properties = {
                "objectType": "annotation",
                "name": name,
                "classification": {"name": name, "color": [int(c) for c in colours[cls]]},
            }
            k = 0
            for polygon, held in traced_polygons(labels, cls, step):
                if k == 0:
                    f.write(("," if n else "") + '{"type":"Feature","geometry":{"type":"MultiPolygon","coordinates":[')
                f.write("," if k else "")
                rings = [*map(shapely.get_coordinates, shapely.get_rings(polygon)), *held]
                for j, coords in enumerate(rings):
                    f.write(("[" if j == 0 else ",") + _ring_text(coords * factor))
                f.write("]")
                k += 1
            if k:
                f.write(f']}},"properties":{json.dumps(properties, separators=(",", ":"))}}}')
                n += 1
        f.write("]}")
    return n
