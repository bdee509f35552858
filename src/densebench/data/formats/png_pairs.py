"""`png_pairs`: image and label PNG folders that mirror each other (TNBC: `Slide_XX/` and `GT_XX/`).

The label is a single-channel map of release codes (TNBC: 0 background, 255 nucleus), paired with
its image by file name; `codes` maps the values to classes, so an unexpected value is an error
rather than a silent background. Such releases have no instance maps (touching nuclei merge).
"""

from __future__ import annotations

from densebench.data import SOURCES
from densebench.data.base import Record, Sample
from densebench.data.formats._nuclei import NucleiSource
from densebench.data.io import read_image, read_label, single_channel


@SOURCES.register("png_pairs")
class PngPairs(NucleiSource):
    has_instances = False

    def load(self, sample: Sample) -> Record:
        image_path, label_path = sample.paths
        raw = single_channel(read_label(label_path), label_path)
        return self.finish(sample, read_image(image_path), raw, None)
