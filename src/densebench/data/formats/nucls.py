"""`nucls`: the NuCLS release — `rgb/<fov>.png` with `mask/<fov>.png` code masks and hospital folds.

Mask channel 0 holds the ground-truth code of each pixel (nucleus classes 1-12, 99 = unlabeled
nucleus, 253 = inside the field of view but no nucleus, 0 = outside the field of view); the product
of channels 1 and 2 is the nucleus' instance id. The official split is hospital-based:
`train_test_splits/fold_<k>_{train,test}.csv` list slide names (column `slide_name`), and a FOV
belongs to the slide named before `_id-` in its file name.
"""

from __future__ import annotations

import numpy as np

from densebench.data import SOURCES
from densebench.data.base import Record, Sample
from densebench.data.formats._nuclei import NucleiSource, SplitLookup, table_lookup
from densebench.data.io import read_image, read_label
from densebench.errors import DataError


@SOURCES.register("nucls")
class NuCLS(NucleiSource):
    has_instances = True

    def split_lookup(self) -> SplitLookup | None:
        """slide name → train/test from the configured fold's lists (only when the split is official)."""
        if self.cfg.get("split", "official") != "official" or self.cfg.get("split_file"):
            return None
        fold = int(self.layout.fold)
        table: dict[str, str] = {}
        for part in ("train", "test"):
            path = self.scan_one(rf"(^|/)fold_{fold}_{part}\.csv$", (".csv",), f"fold {fold} {part} list")
            for row in self.read_split_csv(path, ("slide_name",)):
                slide = row["slide_name"].strip()
                if table.get(slide, part) != part:
                    raise DataError(f"{path}: slide {slide} is in both the train and the test list of fold {fold}")
                table[slide] = part
        return table_lookup(
            table, lambda stem: stem.split("_id-")[0], path.parent, f"either list of official fold {fold}"
        )

    def load(self, sample: Sample) -> Record:
        image_path, mask_path = sample.paths
        image = read_image(image_path)
        mask = read_label(mask_path)
        if mask.ndim != 3 or mask.shape[2] < 3:
            raise DataError(f"{mask_path}: NuCLS masks are 3-channel (code, id, id), got shape {mask.shape}")
        codes = mask[..., 0]
        nucleus = ~np.isin(codes, list(self.layout.non_nucleus_codes))
        instances = np.where(nucleus, mask[..., 1].astype(np.int32) * mask[..., 2].astype(np.int32), 0)
        return self.finish(sample, image, codes, instances)
