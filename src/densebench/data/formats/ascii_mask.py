"""`ascii_mask`: the original CPM-15 (MICCAI 2015) release — RGBA PNG tiles with ASCII label masks.

`imageXX_mask.txt` starts with a "width height" line followed by one instance label per line for
pixel (0,0), (1,0), (2,0), ... — x runs fastest, so the values fill the tile row by row. 0 is
background and 1..N are nuclei. `imageXX_poly.png` is only a rendering and is not read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from densebench.data import SOURCES
from densebench.data.formats._nuclei import InstanceFileSource, as_instances
from densebench.errors import DataError


def read_ascii_mask(path: str | Path) -> np.ndarray:
    """(height, width) int32 labels; a header/count mismatch (a truncated file) is an error."""
    try:
        tokens = Path(path).read_bytes().split()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    try:
        values = np.array(tokens, dtype=np.int64)
    except ValueError:
        raise DataError(f"{path}: holds a non-integer token; expected 'width height' then one label per line") from None
    if values.size < 2 or values[0] <= 0 or values[1] <= 0:
        raise DataError(f"{path}: first line must be 'width height'")
    width, height = int(values[0]), int(values[1])
    labels = values[2:]
    if labels.size != width * height:
        raise DataError(
            f"{path}: header says {width}x{height} = {width * height} labels but the file holds {labels.size}; it may be truncated"
        )
    return as_instances(labels.reshape(height, width), str(path))


@SOURCES.register("ascii_mask")
class AsciiMask(InstanceFileSource):
    label_suffixes = (".txt",)
    label_kind = "ASCII mask"

    def read_instances(self, path: str, shape: tuple[int, int]) -> np.ndarray:
        return read_ascii_mask(path)
