"""`monuseg_xml`: the original MoNuSeg / Kumar release — TIFF tiles with Aperio ImageScope XML polygons.

Each `<Region>` of the XML is one nucleus outline (float vertices, a few slightly outside the tile).
Polygons are rasterised in file order into an instance map (ids 1..N); where outlines overlap the
later region wins, as when the annotation is drawn. A region that covers no pixel centre (a
degenerate outline) leaves no trace, like in every rasterisation of this release. Training TIFFs
are LZW-compressed and test TIFFs PackBits; tifffile reads both.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from skimage.draw import polygon as fill_polygon

from densebench.data import SOURCES
from densebench.data.formats._nuclei import InstanceFileSource
from densebench.errors import DataError


def read_regions(path: str | Path) -> list[np.ndarray]:
    """The (x, y) vertex arrays of every Region in an Aperio XML file, in file order."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DataError(f"{path}: cannot parse annotation XML ({exc}); the file may be truncated") from None
    regions = []
    for region in root.iter("Region"):
        try:
            xy = [(float(v.attrib["X"]), float(v.attrib["Y"])) for v in region.iter("Vertex")]
        except (KeyError, ValueError) as exc:
            raise DataError(f"{path}: Region {region.attrib.get('Id', '?')} has a bad Vertex ({exc})") from None
        regions.append(np.asarray(xy, dtype=np.float64).reshape(-1, 2))
    return regions


def rasterise(regions: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Instance map: region i (1-based, file order) fills the pixels whose centres lie inside it."""
    out = np.zeros(shape, dtype=np.int32)
    for i, xy in enumerate(regions, start=1):
        if len(xy) >= 3:
            rr, cc = fill_polygon(xy[:, 1], xy[:, 0], shape=shape)
            out[rr, cc] = i
    return out


@SOURCES.register("monuseg_xml")
class MoNuSegXML(InstanceFileSource):
    label_suffixes = (".xml",)
    label_kind = "XML annotation"

    def read_instances(self, path: str, shape: tuple[int, int]) -> np.ndarray:
        return rasterise(read_regions(path), shape)
